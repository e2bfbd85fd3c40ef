//! A small builder of ONNX graphs: nodes with generated names, attributes, constants (shared
//! when equal) and the parameters as named initializers.

use super::proto::{
    attribute_type, data_type, AttributeProto, Dimension, GraphProto, NodeProto, TensorProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use std::collections::HashMap;

/// Attributes of a node, one constructor per type.
pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(v),
        r#type: Some(attribute_type::INT),
        ..Default::default()
    }
}

pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v.to_vec(),
        r#type: Some(attribute_type::INTS),
        ..Default::default()
    }
}

pub fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        f: Some(v),
        r#type: Some(attribute_type::FLOAT),
        ..Default::default()
    }
}

pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        s: Some(v.as_bytes().to_vec()),
        r#type: Some(attribute_type::STRING),
        ..Default::default()
    }
}

fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        t: Some(t),
        r#type: Some(attribute_type::TENSOR),
        ..Default::default()
    }
}

/// A tensor of `dims` holding little-endian `raw` bytes of type `dtype`.
pub fn tensor(name: Option<&str>, dtype: i32, dims: &[usize], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(dtype),
        name: name.map(Into::into),
        raw_data: Some(raw),
    }
}

/// A dimension of a value's declared shape: a size, or a name for one known at run time.
#[derive(Clone, Debug)]
pub enum Dim {
    Fixed(usize),
    Named(&'static str),
}

/// A graph input or output: a tensor of `dtype` and `shape`, described by `doc`.
pub fn value_info(name: &str, dtype: i32, shape: &[Dim], doc: &str) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(v) => Dimension {
                dim_value: Some(*v as i64),
                dim_param: None,
            },
            Dim::Named(n) => Dimension {
                dim_value: None,
                dim_param: Some((*n).into()),
            },
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(dtype),
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: Some(doc.into()),
    }
}

/// The nodes and initializers of a graph being built, in order.
#[derive(Default)]
pub struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Constants already made, by type, shape and bytes: equal constants are one node.
    constants: HashMap<(i32, Vec<usize>, Vec<u8>), String>,
}

impl Builder {
    /// Adds an `op` node and returns its output's name (`op_N`, unique).
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        self.op_to(&out, op, inputs, attrs)
    }

    /// Adds an `op` node whose output is called `out` (a graph output, or a name worth reading
    /// in a viewer) and returns that name.
    pub fn op_to(
        &mut self,
        out: &str,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            name: Some(format!("{out}_node")),
            op_type: Some(op.into()),
            attribute: attrs,
        });
        out.into()
    }

    /// Adds an `op` node with `n` outputs and returns their names (`op_N_0`, `op_N_1`, ...).
    pub fn op_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        n: usize,
    ) -> Vec<String> {
        let base = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        let outputs: Vec<String> = (0..n).map(|i| format!("{base}_{i}")).collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.clone(),
            name: Some(format!("{base}_node")),
            op_type: Some(op.into()),
            attribute: attrs,
        });
        outputs
    }

    /// A named initializer of f32 values (the model's parameters).
    pub fn initializer(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers
            .push(tensor(Some(name), data_type::FLOAT, dims, raw));
        name.into()
    }

    fn constant(&mut self, dtype: i32, dims: &[usize], raw: Vec<u8>) -> String {
        let key = (dtype, dims.to_vec(), raw);
        if let Some(name) = self.constants.get(&key) {
            return name.clone();
        }
        let t = tensor(None, dtype, dims, key.2.clone());
        let name = self.op("Constant", &[], vec![tensor_attr("value", t)]);
        self.constants.insert(key, name.clone());
        name
    }

    pub fn const_f32(&mut self, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(data_type::FLOAT, dims, raw)
    }

    pub fn const_f64(&mut self, dims: &[usize], values: &[f64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(data_type::DOUBLE, dims, raw)
    }

    pub fn const_i64(&mut self, dims: &[usize], values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(data_type::INT64, dims, raw)
    }

    /// The finished graph.
    pub fn finish(
        self,
        name: &str,
        doc: &str,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
    ) -> GraphProto {
        GraphProto {
            node: self.nodes,
            name: Some(name.into()),
            initializer: self.initializers,
            doc_string: Some(doc.into()),
            input: inputs,
            output: outputs,
        }
    }
}
