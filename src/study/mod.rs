//! Studies of the method and the engine: the LAMP-versus-baseline table (`experiment`, its
//! results store `results`, its statistics `paired` and its report `report`), loss landscapes
//! (`landscape`) and this device's speed (`bench`).

pub mod bench;
pub mod experiment;
pub mod landscape;
pub mod paired;
pub mod report;
pub mod results;
