//! The parser of `term|term|…` specifications.

use super::{Entries, Indices, Mask, Matrix, Operator, Term, readers::read_indices};
use crate::error::{Error, Result};

fn number(spec: &str, text: &str) -> Result<usize> {
    text.trim().parse().map_err(|_| Error::Operator {
        spec: spec.into(),
        reason: format!("'{text}' is not a non-negative integer"),
    })
}

/// `K[@O]` with `K ≥ 1`.
fn stride_arg(spec: &str, arg: &str) -> Result<(usize, usize)> {
    let (k, o) = match arg.split_once('@') {
        Some((k, o)) => (number(spec, k)?, number(spec, o)?),
        None => (number(spec, arg)?, 0),
    };
    if k == 0 {
        return Err(Error::Operator {
            spec: spec.into(),
            reason: "stride must be at least 1".into(),
        });
    }
    Ok((k, o))
}

const KNOWN: &str = "stride:K[@O], last, select:I[,J], coarsen:R, crop:I0:I1:J0:J1, \
                     space-stride:K[@O], vorticity, saturate, arctan, mask:FILE.npy, at:I[,J]|FILE.npy, \
                     points:FILE.npy, linear:FILE.npy, table:FILE.csv";

impl Operator {
    /// Parses `term|term|…`. The empty string (or `identity`) observes everything. A
    /// `mask:FILE` term reads its file now.
    pub fn parse(spec: &str) -> Result<Self> {
        let err = |reason: String| Error::Operator {
            spec: spec.into(),
            reason,
        };
        let mut terms = Vec::new();
        for part in spec.split('|').map(str::trim) {
            if part.is_empty() || part == "identity" {
                continue;
            }
            let (name, arg) = match part.split_once(':') {
                Some((n, a)) => (n.trim(), Some(a.trim())),
                None => (part, None),
            };
            let need =
                || arg.ok_or_else(|| err(format!("'{name}' needs an argument, e.g. {name}:2")));
            let no_arg = |term: Term| match arg {
                Some(_) => Err(err(format!("'{name}' takes no argument"))),
                None => Ok(term),
            };
            let term = match name {
                "stride" => {
                    let (stride, offset) = stride_arg(spec, need()?)?;
                    Term::Stride { stride, offset }
                }
                "space-stride" => {
                    let (stride, offset) = stride_arg(spec, need()?)?;
                    Term::SpaceStride { stride, offset }
                }
                "last" => no_arg(Term::Last)?,
                "vorticity" => no_arg(Term::Vorticity)?,
                "saturate" => no_arg(Term::Saturate)?,
                "arctan" => no_arg(Term::Arctan)?,
                "select" => {
                    let idx = need()?
                        .split(',')
                        .map(|s| number(spec, s))
                        .collect::<Result<Vec<_>>>()?;
                    Term::Select(idx)
                }
                "coarsen" => match number(spec, need()?)? {
                    0 => return Err(err("coarsen factor must be at least 1".into())),
                    r => Term::Coarsen(r),
                },
                "crop" => {
                    let v = need()?
                        .split(':')
                        .map(|s| number(spec, s))
                        .collect::<Result<Vec<_>>>()?;
                    match v[..] {
                        [i0, i1, j0, j1] if i0 < i1 && j0 < j1 => Term::Crop {
                            rows: i0..i1,
                            cols: j0..j1,
                        },
                        [_, _, _, _] => {
                            return Err(err("crop needs I0 < I1 and J0 < J1".into()));
                        }
                        _ => return Err(err("crop takes four numbers: crop:I0:I1:J0:J1".into())),
                    }
                }
                "mask" => Term::Mask(Mask::read(need()?)?),
                "at" => {
                    let arg = need()?;
                    let idx = if arg.ends_with(".npy") {
                        read_indices(spec, arg)?
                    } else {
                        arg.split(',')
                            .map(|s| number(spec, s))
                            .collect::<Result<Vec<_>>>()?
                    };
                    if idx.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(err("at: states must be listed in increasing order".into()));
                    }
                    Term::At(idx)
                }
                "points" => {
                    let path = need()?;
                    Term::Points(Indices {
                        path: path.into(),
                        indices: read_indices(spec, path)?,
                    })
                }
                "linear" => Term::Linear(Matrix::read(spec, need()?)?),
                "table" => {
                    let path = need()?;
                    let t = crate::score::table::Table::read(std::path::Path::new(path))?;
                    Term::Table(Entries {
                        path: path.into(),
                        ..Entries::of(&t)
                    })
                }
                other => {
                    return Err(err(format!("unknown term '{other}' (known: {KNOWN})")));
                }
            };
            terms.push(term);
        }
        if terms.len() > 1 && terms.iter().any(|t| matches!(t, Term::Table(_))) {
            return Err(err(
                "a table is a whole operator: it takes no other term".into()
            ));
        }
        Ok(Self {
            spec: spec.into(),
            terms,
        })
    }
}
