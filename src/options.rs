//! Settings by name: the values of the command line's flags parsed from strings, for callers
//! other than the command line (the Python package), so that both accept the same words and
//! refuse the rest with the same messages.

use std::path::Path;

use clap::ValueEnum;

use crate::data::{SystemInfo, read_info};
use crate::error::{Error, Result};
use crate::io::read_json;
use crate::mcs::System;

/// The value of the flag `flag` named `value` (as `--help` lists them, case-insensitive).
pub fn parse<T: ValueEnum>(flag: &str, value: &str) -> Result<T> {
    T::from_str(value, true).map_err(|_| {
        let known: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|v| v.get_name().to_string())
            .collect();
        Error::config(
            flag,
            format!("unknown value '{value}' (known: {})", known.join(", ")),
        )
    })
}

/// A system and its state shape from a name (default parameters), a data folder or its
/// `system.json`, as `sda filter --system` takes it.
pub fn system(spec: &str) -> Result<(System, Vec<usize>)> {
    let path = Path::new(spec);
    let info: Option<SystemInfo> = if path.is_dir() {
        Some(read_info(path)?)
    } else if path.is_file() {
        Some(read_json(path)?)
    } else {
        None
    };
    match info {
        Some(info) => Ok((info.system, info.state_shape)),
        None if spec.contains(std::path::MAIN_SEPARATOR) || spec.ends_with(".json") => {
            Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such data folder or file",
                ),
            })
        }
        None => {
            let system = System::from_name(spec)?;
            let shape = system.state_shape();
            Ok((system, shape))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::net::Composition;

    #[test]
    fn names_parse_as_the_flags_do_and_others_are_named() {
        assert_eq!(
            parse::<Composition>("--composition", "Centre").unwrap(),
            Composition::Centre
        );
        let err = parse::<Composition>("--composition", "median")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--composition: unknown value 'median'"),
            "{err}"
        );
        assert!(err.contains("mean") && err.contains("centre"), "{err}");
        // Sampler and likelihood names, through the presets' settings.
        use crate::score::guidance::Likelihood;
        use crate::score::preset::{Flags, LikelihoodKind, Preset};
        let kind = parse::<LikelihoodKind>("--likelihood", "MMPS").unwrap();
        let s = Preset::Paper
            .resolve(&Flags {
                likelihood: Some(kind),
                iterations: Some(2),
                ..Flags::default()
            })
            .unwrap();
        assert!(matches!(
            s.likelihood,
            Likelihood::Mmps { iterations: 2, .. }
        ));
        assert!(parse::<LikelihoodKind>("--likelihood", "gauss").is_err());
        assert_eq!(system("linear").unwrap().1, vec![2]);
        assert!(matches!(system("nope"), Err(Error::UnknownSystem(_))));
        assert!(matches!(system("no/such/dir"), Err(Error::Io { .. })));
    }
}
