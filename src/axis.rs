//! One coordinate axis of a record (time, latitude, longitude, stations): its name, values and
//! the attributes that say what they mean.

use serde::{Deserialize, Serialize};

/// One coordinate axis: its name, values and the attributes that say what they mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The dimension's name (`TIME`, `lat`).
    pub name: String,
    /// The coordinate values (the indices 0, 1, … where the file has no coordinate variable).
    pub values: Vec<f64>,
    /// The `units` attribute of the coordinate variable (`days since 1982-01-01`,
    /// `degrees_north`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
    /// The `calendar` attribute (time axes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
}
