//! A NetCDF-3 writer, from the format specification (an oracle that shares nothing with the
//! reader), for the tests of `sda import --netcdf`.
#![allow(dead_code)]

pub const NC_BYTE: u32 = 1;
pub const NC_CHAR: u32 = 2;
pub const NC_SHORT: u32 = 3;
pub const NC_INT: u32 = 4;
pub const NC_FLOAT: u32 = 5;
pub const NC_DOUBLE: u32 = 6;

pub enum Att {
    Text(&'static str),
    Short(i16),
    Float(f32),
}

pub struct Var {
    pub name: &'static str,
    pub dims: Vec<u32>,
    pub ty: u32,
    pub atts: Vec<(&'static str, Att)>,
    /// Big-endian values: all of them for a fixed variable, one record's after another for a
    /// record variable (each record's unpadded).
    pub data: Vec<Vec<u8>>,
}

fn pad4(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

fn name(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u32).to_be_bytes());
    b.extend(s.as_bytes());
    pad4(b);
}

fn atts(b: &mut Vec<u8>, list: &[(&str, Att)]) {
    if list.is_empty() {
        b.extend([0u8; 8]);
        return;
    }
    b.extend(0x0Cu32.to_be_bytes());
    b.extend((list.len() as u32).to_be_bytes());
    for (n, a) in list {
        name(b, n);
        match a {
            Att::Text(t) => {
                b.extend(NC_CHAR.to_be_bytes());
                b.extend((t.len() as u32).to_be_bytes());
                b.extend(t.as_bytes());
            }
            Att::Short(v) => {
                b.extend(NC_SHORT.to_be_bytes());
                b.extend(1u32.to_be_bytes());
                b.extend(v.to_be_bytes());
            }
            Att::Float(v) => {
                b.extend(NC_FLOAT.to_be_bytes());
                b.extend(1u32.to_be_bytes());
                b.extend(v.to_be_bytes());
            }
        }
        pad4(b);
    }
}

/// A NetCDF-3 file (`version` 1: classic, 2: 64-bit offset) of `dims` (size 0: the record
/// dimension, of `numrecs` records) and `vars`.
pub fn netcdf3(version: u8, dims: &[(&str, u32)], numrecs: u32, vars: &[Var]) -> Vec<u8> {
    let record = |v: &Var| v.dims.first().is_some_and(|&d| dims[d as usize].1 == 0);
    let header = |begins: &[u64]| -> Vec<u8> {
        let mut b = vec![b'C', b'D', b'F', version];
        b.extend(numrecs.to_be_bytes());
        b.extend(0x0Au32.to_be_bytes());
        b.extend((dims.len() as u32).to_be_bytes());
        for (n, size) in dims {
            name(&mut b, n);
            b.extend(size.to_be_bytes());
        }
        atts(&mut b, &[("title", Att::Text("a tiny test record"))]);
        b.extend(0x0Bu32.to_be_bytes());
        b.extend((vars.len() as u32).to_be_bytes());
        for (v, begin) in vars.iter().zip(begins) {
            name(&mut b, v.name);
            b.extend((v.dims.len() as u32).to_be_bytes());
            for d in &v.dims {
                b.extend(d.to_be_bytes());
            }
            atts(&mut b, &v.atts);
            b.extend(v.ty.to_be_bytes());
            let slab = v.data[0].len().div_ceil(4) * 4;
            b.extend((slab as u32).to_be_bytes());
            if version == 1 {
                b.extend((*begin as u32).to_be_bytes());
            } else {
                b.extend(begin.to_be_bytes());
            }
        }
        b
    };
    let size = header(&vec![0; vars.len()]).len() as u64;
    // Fixed variables first, each padded to 4 bytes, then the records: each record holds every
    // record variable's slab in turn, each padded to 4 bytes.
    let mut begins = vec![0u64; vars.len()];
    let mut at = size;
    for (i, v) in vars.iter().enumerate() {
        if !record(v) {
            begins[i] = at;
            at += v.data[0].len().div_ceil(4) as u64 * 4;
        }
    }
    for (i, v) in vars.iter().enumerate() {
        if record(v) {
            begins[i] = at;
            at += v.data[0].len().div_ceil(4) as u64 * 4;
        }
    }
    let mut b = header(&begins);
    assert_eq!(b.len() as u64, size);
    for v in vars.iter().filter(|v| !record(v)) {
        b.extend(&v.data[0]);
        pad4(&mut b);
    }
    for r in 0..numrecs as usize {
        for v in vars.iter().filter(|v| record(v)) {
            b.extend(&v.data[r]);
            pad4(&mut b);
        }
    }
    b
}
