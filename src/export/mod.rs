//! Trained models in other frameworks' formats: ONNX (`onnx`, the graph; `proto`, the part of
//! ONNX's protobuf schema it is written in; `graph`, a small graph builder).

pub mod graph;
pub mod onnx;
pub mod proto;
