//! NetCDF-3 files written in pure Rust, from the format's specification (Unidata's "NetCDF
//! Classic and 64-bit Offset Format"): fixed-size dimensions, text and numeric attributes,
//! `float` and `double` variables. The file is the classic format (`CDF\x01`), or the 64-bit
//! offset format (`CDF\x02`) when it passes 2 GiB; both open in every NetCDF reader (the C
//! library, `scipy.io.netcdf_file`, `xarray`, the `netcdf-reader` crate that `sda import` uses).
//!
//! Layout: the header (magic, number of records, dimension list, global attributes, variable
//! list with each variable's type, size and offset), then each variable's values, big-endian,
//! in C order, each padded to 4 bytes. There is no record (unlimited) dimension.

use std::path::Path;

use crate::error::{Error, Result};

const NC_DIMENSION: u32 = 0x0A;
const NC_VARIABLE: u32 = 0x0B;
const NC_ATTRIBUTE: u32 = 0x0C;
const NC_CHAR: u32 = 2;
const NC_INT: u32 = 4;
const NC_FLOAT: u32 = 5;
const NC_DOUBLE: u32 = 6;

/// The default fill value of `float` variables (`NC_FILL_FLOAT`).
pub const FILL_FLOAT: f32 = 9.969_21e36;

/// The value of an attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text (`char`).
    Text(String),
    /// 32-bit integers.
    Int(Vec<i32>),
    /// 32-bit floats.
    Float(Vec<f32>),
    /// 64-bit floats.
    Double(Vec<f64>),
}

/// One attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: Value,
}

impl Attribute {
    /// A text attribute.
    pub fn text(name: &str, value: &str) -> Self {
        Self {
            name: name.into(),
            value: Value::Text(value.into()),
        }
    }
}

/// The values of a variable, in C order over its dimensions.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// `float`.
    Float(Vec<f32>),
    /// `double`.
    Double(Vec<f64>),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::Float(v) => v.len(),
            Data::Double(v) => v.len(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Data::Float(v) => 4 * v.len(),
            Data::Double(v) => 8 * v.len(),
        }
    }
}

/// One variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    /// Its name.
    pub name: String,
    /// Its dimensions, as indices into [`File::dimensions`].
    pub dims: Vec<usize>,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
    /// Its values.
    pub data: Data,
}

/// A NetCDF-3 file in memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    /// Dimensions: name and size (at least 1).
    pub dimensions: Vec<(String, usize)>,
    /// Global attributes.
    pub attributes: Vec<Attribute>,
    /// Variables.
    pub variables: Vec<Variable>,
}

fn pad4(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

fn put_name(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u32).to_be_bytes());
    b.extend(s.as_bytes());
    pad4(b);
}

fn put_attributes(b: &mut Vec<u8>, list: &[Attribute]) {
    if list.is_empty() {
        b.extend([0u8; 8]);
        return;
    }
    b.extend(NC_ATTRIBUTE.to_be_bytes());
    b.extend((list.len() as u32).to_be_bytes());
    for a in list {
        put_name(b, &a.name);
        match &a.value {
            Value::Text(t) => {
                b.extend(NC_CHAR.to_be_bytes());
                b.extend((t.len() as u32).to_be_bytes());
                b.extend(t.as_bytes());
            }
            Value::Int(v) => {
                b.extend(NC_INT.to_be_bytes());
                b.extend((v.len() as u32).to_be_bytes());
                v.iter().for_each(|x| b.extend(x.to_be_bytes()));
            }
            Value::Float(v) => {
                b.extend(NC_FLOAT.to_be_bytes());
                b.extend((v.len() as u32).to_be_bytes());
                v.iter().for_each(|x| b.extend(x.to_be_bytes()));
            }
            Value::Double(v) => {
                b.extend(NC_DOUBLE.to_be_bytes());
                b.extend((v.len() as u32).to_be_bytes());
                v.iter().for_each(|x| b.extend(x.to_be_bytes()));
            }
        }
        pad4(b);
    }
}

/// Whether `s` is a name NetCDF accepts (a conservative subset): a letter or `_`, then
/// letters, digits, `_`, `.`, `@`, `+`, `-`; at most 256 bytes.
pub fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || "_.@+-".contains(c))
        && s.len() <= 256
}

impl File {
    /// Checks the names, sizes and lengths: every name valid and unique among its kind, every
    /// dimension of at least one cell, every variable's values as many as its dimensions hold.
    fn check(&self, what: &str) -> Result<()> {
        let bad = |reason: String| Error::config(what, reason);
        let mut names: Vec<&str> = Vec::new();
        for (n, size) in &self.dimensions {
            if !valid_name(n) || names.contains(&n.as_str()) {
                return Err(bad(format!(
                    "dimension name '{n}' is not valid or not unique"
                )));
            }
            if *size == 0 {
                return Err(bad(format!("dimension {n} has no cell")));
            }
            names.push(n);
        }
        let mut names: Vec<&str> = Vec::new();
        for v in &self.variables {
            if !valid_name(&v.name) || names.contains(&v.name.as_str()) {
                return Err(bad(format!(
                    "variable name '{}' is not valid or not unique",
                    v.name
                )));
            }
            names.push(&v.name);
            let cells: usize = v
                .dims
                .iter()
                .map(|&d| self.dimensions.get(d).map_or(0, |x| x.1))
                .product();
            if v.dims.iter().any(|&d| d >= self.dimensions.len()) || cells != v.data.len() {
                return Err(bad(format!(
                    "variable {} holds {} values for dimensions of {cells} cells",
                    v.name,
                    v.data.len()
                )));
            }
        }
        for a in self
            .attributes
            .iter()
            .chain(self.variables.iter().flat_map(|v| &v.attributes))
        {
            if !valid_name(&a.name) {
                return Err(bad(format!("attribute name '{}' is not valid", a.name)));
            }
        }
        Ok(())
    }

    fn header(&self, version: u8, begins: &[u64]) -> Vec<u8> {
        let mut b = vec![b'C', b'D', b'F', version];
        b.extend(0u32.to_be_bytes());
        if self.dimensions.is_empty() {
            b.extend([0u8; 8]);
        } else {
            b.extend(NC_DIMENSION.to_be_bytes());
            b.extend((self.dimensions.len() as u32).to_be_bytes());
            for (n, size) in &self.dimensions {
                put_name(&mut b, n);
                b.extend((*size as u32).to_be_bytes());
            }
        }
        put_attributes(&mut b, &self.attributes);
        if self.variables.is_empty() {
            b.extend([0u8; 8]);
        }
        if !self.variables.is_empty() {
            b.extend(NC_VARIABLE.to_be_bytes());
            b.extend((self.variables.len() as u32).to_be_bytes());
        }
        for (v, begin) in self.variables.iter().zip(begins) {
            put_name(&mut b, &v.name);
            b.extend((v.dims.len() as u32).to_be_bytes());
            v.dims
                .iter()
                .for_each(|&d| b.extend((d as u32).to_be_bytes()));
            put_attributes(&mut b, &v.attributes);
            b.extend(
                match v.data {
                    Data::Float(_) => NC_FLOAT,
                    Data::Double(_) => NC_DOUBLE,
                }
                .to_be_bytes(),
            );
            // vsize: the padded size, or 2³² − 1 when it does not fit (allowed for the last
            // variable, which readers then size from its dimensions).
            let vsize = v.data.bytes().div_ceil(4) * 4;
            b.extend(u32::try_from(vsize).unwrap_or(u32::MAX).to_be_bytes());
            if version == 1 {
                b.extend((*begin as u32).to_be_bytes());
            } else {
                b.extend(begin.to_be_bytes());
            }
        }
        b
    }

    /// The file's bytes: classic format, or 64-bit offset where an offset passes 2³¹ − 1.
    ///
    /// # Errors
    /// Names that are not valid or not unique, a dimension of no cell, a variable whose values
    /// do not fill its dimensions; `what` names the file in the message.
    pub fn to_bytes(&self, what: &str) -> Result<Vec<u8>> {
        self.check(what)?;
        let size1 = self.header(1, &vec![0; self.variables.len()]).len() as u64;
        let data: u64 = self
            .variables
            .iter()
            .map(|v| v.data.bytes().div_ceil(4) as u64 * 4)
            .sum();
        let last = self.variables.last().map_or(0, |v| v.data.bytes() as u64);
        let version = if size1 + data - last > i32::MAX as u64 {
            2
        } else {
            1
        };
        let size = self.header(version, &vec![0; self.variables.len()]).len() as u64;
        let mut begins = Vec::with_capacity(self.variables.len());
        let mut at = size;
        for v in &self.variables {
            begins.push(at);
            at += v.data.bytes().div_ceil(4) as u64 * 4;
        }
        let mut b = self.header(version, &begins);
        debug_assert_eq!(b.len() as u64, size);
        b.reserve(data as usize);
        for v in &self.variables {
            match &v.data {
                Data::Float(x) => x.iter().for_each(|x| b.extend(x.to_be_bytes())),
                Data::Double(x) => x.iter().for_each(|x| b.extend(x.to_be_bytes())),
            }
            pad4(&mut b);
        }
        Ok(b)
    }

    /// Writes the file to `path`, atomically (a file of that name appears whole or not at all).
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes(&path.display().to_string())?;
        crate::io::write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_file_is_laid_out_as_the_specification_says() {
        // One dimension x of 3, a text global attribute, one float variable of 3 values.
        let f = File {
            dimensions: vec![("x".into(), 3)],
            attributes: vec![Attribute::text("title", "ab")],
            variables: vec![Variable {
                name: "v".into(),
                dims: vec![0],
                attributes: vec![],
                data: Data::Float(vec![1.0, 2.0, -0.5]),
            }],
        };
        let b = f.to_bytes("t.nc").unwrap();
        let w = |k: usize| u32::from_be_bytes(b[k..k + 4].try_into().unwrap());
        assert_eq!(&b[..4], b"CDF\x01");
        assert_eq!((w(4), w(8), w(12)), (0, NC_DIMENSION, 1));
        assert_eq!((w(16), &b[20..21], w(24)), (1, &b"x"[..], 3));
        assert_eq!((w(28), w(32)), (NC_ATTRIBUTE, 1));
        assert_eq!(
            (w(36), &b[40..45], w(48), w(52)),
            (5, &b"title"[..], NC_CHAR, 2)
        );
        assert_eq!(&b[56..58], b"ab");
        assert_eq!((w(60), w(64)), (NC_VARIABLE, 1));
        // name "v", one dimension (0), no attributes, float, vsize 12, begin.
        assert_eq!((w(68), w(76), w(80)), (1, 1, 0));
        assert_eq!((w(84), w(88), w(92), w(96)), (0, 0, NC_FLOAT, 12));
        let begin = w(100) as usize;
        assert_eq!(begin, 104);
        assert_eq!(b.len(), begin + 12);
        assert_eq!(f32::from_be_bytes(b[begin + 8..].try_into().unwrap()), -0.5);
    }

    #[test]
    fn bad_names_and_sizes_are_refused() {
        let var = |name: &str, n: usize| Variable {
            name: name.into(),
            dims: vec![0],
            attributes: vec![],
            data: Data::Double(vec![0.0; n]),
        };
        let file = |vars: Vec<Variable>| File {
            dimensions: vec![("x".into(), 2)],
            attributes: vec![],
            variables: vars,
        };
        let e = file(vec![var("v", 3)])
            .to_bytes("o.nc")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("o.nc") && e.contains("3 values for dimensions of 2"),
            "{e}"
        );
        let e = file(vec![var("1v", 2)])
            .to_bytes("o.nc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'1v'"), "{e}");
        let e = file(vec![var("v", 2), var("v", 2)])
            .to_bytes("o.nc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not unique"), "{e}");
        assert!(file(vec![var("v_1.a", 2)]).to_bytes("o.nc").is_ok());
    }
}
