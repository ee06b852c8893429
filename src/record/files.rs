//! The files of a data folder made from a record: the trajectories, `mask.npy`, the
//! observed-value masks and `system.json`.

use std::path::Path;

use super::Cut;
use crate::data::{SystemInfo, shape_text};
use crate::error::{Error, Result};
use crate::io::{Array, write_npy};
use crate::mcs::{External, System};
use crate::record_info::{RecordInfo, observed_file};

/// The mask file of a data folder.
pub const MASK_FILE: &str = "mask.npy";

/// Writes a cut record as the data folder `dir`: `mask.npy` (when some value is missing at
/// every time), the observed-value masks (`--gaps keep`), `train.npy`, `valid.npy`, `test.npy`
/// (when the test period has windows), then `system.json`.
pub fn write(dir: &Path, cut: &Cut) -> Result<()> {
    let stale = ["system.json", MASK_FILE, "test.npy"]
        .map(String::from)
        .into_iter()
        .chain(["train", "valid", "test"].map(observed_file));
    for stale in stale {
        match std::fs::remove_file(dir.join(&stale)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Io {
                    path: dir.join(&stale),
                    source: e,
                });
            }
            _ => {}
        }
    }
    for (name, a) in files(cut) {
        write_npy(&dir.join(name), &a)?;
    }
    cut.splits.save(dir)
}

/// The files of a data folder's record besides the trajectories: `mask.npy` and the
/// observed-value masks, as `(file name, array)`, those that its `system.json` names.
pub fn read_files(dir: &Path, info: &SystemInfo) -> Result<Vec<(String, Array)>> {
    let System::External(External {
        record: Some(r), ..
    }) = &info.system
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if let Some(m) = read_mask(dir, info)? {
        out.push((r.mask.as_ref().expect("a mask").file.clone(), m));
    }
    if let Some(o) = &r.observed {
        for f in &o.files {
            let path = dir.join(f);
            if path.exists() {
                out.push((f.clone(), crate::io::read_npy(&path)?));
            }
        }
    }
    Ok(out)
}

/// The files [`write`] writes besides the trajectories, as `(file name, array)`.
pub fn files(cut: &Cut) -> Vec<(String, Array)> {
    let mut out = Vec::new();
    if let Some(m) = &cut.mask {
        out.push((MASK_FILE.to_string(), m.clone()));
    }
    if let Some(o) = &cut.observed {
        for (split, a) in ["train", "valid", "test"].iter().zip(o) {
            if *split != "test" || a.shape[0] > 0 {
                out.push((observed_file(split), a.clone()));
            }
        }
    }
    out
}

/// Reads the fixed mask of a data folder (1 where there is data), if its record has one.
pub fn read_mask(dir: &Path, info: &SystemInfo) -> Result<Option<Array>> {
    let System::External(External {
        record: Some(RecordInfo { mask: Some(m), .. }),
        ..
    }) = &info.system
    else {
        return Ok(None);
    };
    let path = dir.join(&m.file);
    let a = crate::io::read_npy(&path)?;
    if a.shape != info.state_shape {
        return Err(Error::Shape {
            what: path.display().to_string(),
            expected: format!("({}) like the states", shape_text(&info.state_shape)),
            got: a.shape,
        });
    }
    Ok(Some(a))
}
