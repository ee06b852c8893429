//! Files: `.npy` arrays (numpy's format, version 1.0, little-endian f32/f64), JSON, and
//! atomic writes (temporary file, then rename) so that a failure never leaves half a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A dense row-major `f32` array with its shape: what `.npy` files hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// The extent of each axis.
    pub shape: Vec<usize>,
    /// The values, row-major (C order).
    pub data: Vec<f32>,
}

impl Array {
    /// An array from its shape and values.
    ///
    /// # Panics
    /// If the number of values does not match the shape (a bug in the caller).
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape {shape:?}"
        );
        Self { shape, data }
    }

    /// The number of non-finite values.
    pub fn non_finite(&self) -> usize {
        self.data.iter().filter(|v| !v.is_finite()).count()
    }

    /// Fails with [`Error::NonFinite`] if any value is NaN or infinite.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        match self.non_finite() {
            0 => Ok(()),
            count => Err(Error::NonFinite {
                what: what.into(),
                count,
            }),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, then renames it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp); // best effort: the error below is what matters
    }
    result.map_err(io)
}

/// A temporary path beside `path`, for writers that need a path (safetensors, optimizer state).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// Encodes an array as `.npy` bytes (dtype `<f4`).
pub fn npy_bytes(array: &Array) -> Vec<u8> {
    let shape = match array.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", array.shape[0]),
        _ => format!(
            "({})",
            array
                .shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * array.data.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in &array.data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

/// Writes an array to a `.npy` file atomically.
pub fn write_npy(path: &Path, array: &Array) -> Result<()> {
    write_atomic(path, &npy_bytes(array))
}

/// Reads a `.npy` file of dtype f32 or f64 (little-endian, C order) as an f32 [`Array`];
/// integer arrays (int32, int64: index lists) are accepted too.
pub fn read_npy(path: &Path) -> Result<Array> {
    Ok(read_npy_dtype(path)?.0)
}

/// [`read_npy`], with the file's dtype (`float32`, `float64`, `int32`, `int64`).
pub fn read_npy_dtype(path: &Path) -> Result<(Array, &'static str)> {
    let bytes = fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_npy_dtype(&bytes).map_err(|reason| Error::Npy {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
fn parse_npy(bytes: &[u8]) -> std::result::Result<Array, String> {
    Ok(parse_npy_dtype(bytes)?.0)
}

fn parse_npy_dtype(bytes: &[u8]) -> std::result::Result<(Array, &'static str), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let field = |key: &str| -> std::result::Result<&str, String> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or(format!("header lacks '{key}'"))?;
        Ok(header[at + key.len() + 2..]
            .trim_start()
            .trim_start_matches(':')
            .trim_start())
    };
    let descr = field("descr")?;
    let dtype = ["f4", "f8", "i4", "i8"]
        .into_iter()
        .find(|t| descr.starts_with(&format!("'<{t}'")) || descr.starts_with(&format!("'={t}'")));
    let (width, dtype) = match dtype {
        Some("f4") => (4, "float32"),
        Some("f8") => (8, "float64"),
        Some("i4") => (4, "int32"),
        Some(_) => (8, "int64"),
        None => {
            let d = descr.split(',').next().unwrap_or("");
            return Err(format!(
                "dtype {d} is not supported (use float32, float64, int32 or int64)"
            ));
        }
    };
    if field("fortran_order")?.starts_with("True") {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let shape_text = field("shape")?;
    let close = shape_text.find(')').ok_or("malformed shape")?;
    let shape = shape_text[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("malformed shape entry '{s}'"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let count: usize = shape.iter().product();
    let body = &bytes[start + header_len..];
    if body.len() != count * width {
        return Err(format!(
            "holds {} bytes of data, shape {shape:?} needs {}",
            body.len(),
            count * width
        ));
    }
    let data = match dtype {
        "float32" => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "float64" => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        "int32" => body
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        _ => body
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
    };
    Ok((Array { shape, data }, dtype))
}

/// Reads a JSON file into `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serialisable value");
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_keeps_shape_and_values() {
        let a = Array::new(vec![2, 3, 1], vec![1.0, -2.5, 3.0, 4.0, 5.0, f32::MAX]);
        let bytes = npy_bytes(&a);
        // The header is padded so that the data starts at a multiple of 64 bytes.
        assert_eq!((bytes.len() - 24) % 64, 0);
        assert_eq!(parse_npy(&bytes).unwrap(), a);
    }

    #[test]
    fn npy_reads_integers_and_rejects_other_dtypes() {
        let mut bytes = npy_bytes(&Array::new(vec![2], vec![0.0, 0.0]));
        let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[at + 1] = b'i';
        let n = bytes.len();
        bytes[n - 8..n - 4].copy_from_slice(&7i32.to_le_bytes());
        bytes[n - 4..].copy_from_slice(&(-3i32).to_le_bytes());
        let (a, dtype) = parse_npy_dtype(&bytes).unwrap();
        assert_eq!((a.data, dtype), (vec![7.0, -3.0], "int32"));
        bytes[at + 1] = b'c';
        assert!(parse_npy(&bytes).unwrap_err().contains("not supported"));
    }
}
