//! Library errors as Python exceptions: `sda.SdaError`, its subclasses and the messages.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(
    _sda,
    SdaError,
    PyException,
    "An error of sda that is neither a bad value (ValueError) nor a file problem (OSError)."
);

create_exception!(
    _sda,
    SdaDivergedError,
    SdaError,
    "A sampling run that diverged (NaN or inf, values far outside the training range, an \
     exploding guidance term) and was stopped; guard=False turns the check off."
);

/// The kinds of error, each a subclass of both `sda.SdaError` and the builtin exception, so
/// that `except ValueError` and `except sda.SdaError` both catch what they should.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Value,
    Type,
    FileNotFound,
    Permission,
    Os,
}

const KINDS: [(Kind, &str, &str); 5] = [
    (Kind::Value, "SdaValueError", "ValueError"),
    (Kind::Type, "SdaTypeError", "TypeError"),
    (
        Kind::FileNotFound,
        "SdaFileNotFoundError",
        "FileNotFoundError",
    ),
    (Kind::Permission, "SdaPermissionError", "PermissionError"),
    (Kind::Os, "SdaOSError", "OSError"),
];

static ERROR_TYPES: std::sync::OnceLock<Vec<Py<pyo3::types::PyType>>> = std::sync::OnceLock::new();

/// Makes the error classes `class SdaValueError(SdaError, ValueError)`, … and adds them to `m`.
pub(crate) fn add_error_types(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let builtins = py.import("builtins")?;
    let mut types = Vec::new();
    for (_, name, base) in KINDS {
        let dict = PyDict::new(py);
        dict.set_item("__module__", "sda")?;
        dict.set_item("__doc__", format!("A {base} of sda: also a sda.SdaError."))?;
        let bases = pyo3::types::PyTuple::new(
            py,
            [
                py.get_type::<SdaError>().into_any(),
                builtins.getattr(base)?,
            ],
        )?;
        let ty = builtins
            .getattr("type")?
            .call1((name, bases, dict))?
            .cast_into::<pyo3::types::PyType>()?;
        m.add(name, &ty)?;
        types.push(ty.unbind());
    }
    let _ = ERROR_TYPES.set(types);
    Ok(())
}

pub(crate) fn new_err(kind: Kind, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| match ERROR_TYPES.get() {
        Some(types) => PyErr::from_type(types[kind as usize].bind(py).clone(), msg),
        None => SdaError::new_err(msg),
    })
}

/// A command-line flag as the Python keyword that stands for it (`--batch-size` → `batch_size`,
/// `--observations` → `y`).
fn keyword(name: &str) -> String {
    let mut out = String::new();
    for (i, word) in name.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.strip_prefix("--") {
            Some("observations") => out.push('y'),
            Some(flag) => out.push_str(&flag.replace('-', "_")),
            None => out.push_str(word),
        }
    }
    out
}

/// The Python exception of a library error, with its one-line message (flags named as the
/// keywords of this package).
pub(crate) fn py_err(e: sda::Error) -> PyErr {
    use sda::Error as E;
    match e {
        E::Io { path, source } => {
            let msg = format!("{}: {source}", path.display());
            match source.kind() {
                std::io::ErrorKind::NotFound => new_err(Kind::FileNotFound, msg),
                std::io::ErrorKind::PermissionDenied => new_err(Kind::Permission, msg),
                _ => new_err(Kind::Os, msg),
            }
        }
        E::Npy { .. } | E::Json { .. } | E::Weights { .. } => new_err(Kind::Os, e.to_string()),
        E::Shape {
            what,
            expected,
            got,
        } => new_err(
            Kind::Value,
            E::Shape {
                what: keyword(&what),
                expected,
                got,
            }
            .to_string(),
        ),
        E::NonFinite { what, count } => new_err(
            Kind::Value,
            E::NonFinite {
                what: keyword(&what),
                count,
            }
            .to_string(),
        ),
        E::Config { name, reason } => new_err(Kind::Value, format!("{}: {reason}", keyword(&name))),
        E::Operator { .. } | E::UnknownSystem(_) => new_err(Kind::Value, e.to_string()),
        E::Diverged {
            step,
            steps,
            t,
            what,
            advice,
        } => SdaDivergedError::new_err(format!(
            "sampling diverged at step {step} of {steps} (noise level t = {t:.3}): {what}; try \
             {} (guard=False turns this check off)",
            keyword(&advice)
        )),
    }
}

pub(crate) fn value_error(msg: impl Into<String>) -> PyErr {
    new_err(Kind::Value, msg.into())
}
