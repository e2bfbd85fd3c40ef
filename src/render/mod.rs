//! Everything drawn or written for people to read: chart and raster primitives (`plot`),
//! pictures of images and anomaly maps (`picture`), the evaluation report (`eval_report`) and
//! the training curve (`loss_curve`), and CSV tables (`table`).

pub mod eval_report;
pub mod loss_curve;
pub mod picture;
pub mod plot;
pub mod table;

pub use picture::png_bytes;
