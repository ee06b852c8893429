//! The Lorenz-63 study's rows.csv: the rows computed so far, which of them this run's flags
//! would make, and the rows of a merge's shards.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use sda::io::write_atomic;
use sda::nn::cpu::Precision;
use sda::shard::Shards;
use sda::study::lorenz63::{HEADER, Row};

/// rows.csv's text of some rows.
pub fn csv(rows: &[Row]) -> String {
    let mut text = String::from(HEADER);
    text.push('\n');
    for r in rows {
        text.push_str(&r.csv());
        text.push('\n');
    }
    text
}

/// The rows computed so far (rows.csv), and which of them this run's flags would make.
pub struct Done<'a> {
    pub path: PathBuf,
    pub rows: Vec<Row>,
    pub composition: String,
    pub precision: &'a BTreeMap<usize, Precision>,
}

impl Done<'_> {
    /// Whether rows.csv has the row of this assimilation with this run's flags.
    pub fn have(&self, k: usize, case: &str, m: usize, c: usize, key: &str) -> bool {
        self.rows.iter().any(|r| {
            r.k == k
                && r.case == case
                && r.m == m
                && r.c == c
                && r.composition == self.composition
                && r.precision == self.precision[&k].to_string()
                && r.method == key
        })
    }

    /// rows.csv written anew.
    pub fn save(&self) -> Result<()> {
        Ok(write_atomic(&self.path, csv(&self.rows).as_bytes())?)
    }

    /// The shards' rows joined to rows.csv.
    pub fn merge(&mut self, shards: &Shards) -> Result<()> {
        let before = self.rows.len();
        for i in 0..shards.manifest().count {
            let text = String::from_utf8(shards.read(i, "csv")?)
                .with_context(|| format!("{}", shards.part(i, "csv").display()))?;
            for r in text.lines().filter_map(Row::parse) {
                if !self.have(r.k, &r.case, r.m, r.c, &r.method) {
                    self.rows.push(r);
                }
            }
        }
        self.save()?;
        println!(
            "merged {} rows from {} shards",
            self.rows.len() - before,
            shards.manifest().count
        );
        Ok(())
    }
}
