//! temporary stub
#![allow(missing_docs, unused)]
use crate::error::Result;
use crate::io::Array;
use std::path::Path;
pub struct Observations {
    pub times: Vec<usize>,
    pub channels: Vec<Option<usize>>,
    pub values: Array,
}
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    pub color: usize,
}
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub log_x: bool,
    pub log_y: bool,
}
pub fn trajectories(
    path: &Path,
    samples: &Array,
    reference: Option<&Array>,
    truth: Option<&Array>,
    observations: Option<&Observations>,
    labels: &[String],
) -> Result<()> {
    Ok(())
}
pub fn panels(path: &Path, rows: usize, cols: usize, panels: &[Panel]) -> Result<()> {
    Ok(())
}
