//! Everything drawn or written for people to read: charts (`chart`, drawn by plotters with the
//! embedded `font`), colours and raster primitives (`plot`), pictures of images and anomaly maps
//! (`picture`), the evaluation report in Markdown and HTML (`eval_report`, `html`) with its charts
//! of scores (`score_charts`), the training curve (`loss_curve`), and CSV tables (`table`).

pub mod chart;
pub mod eval_report;
pub mod font;
pub mod html;
pub mod loss_curve;
pub mod picture;
pub mod plot;
pub mod score_charts;
pub mod table;

pub use picture::png_bytes;
