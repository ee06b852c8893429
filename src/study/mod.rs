//! What the benchmark studies are made of, apart from running them: the Lorenz-63 study's
//! scenarios, sampler settings and rows (`sda study lorenz63`, the paper's Figure 3), and the
//! Lorenz-96 benchmark's cases, truths and rows (`sda study lorenz96`, DAPPER's benchmarks).

pub mod lorenz63;
pub mod lorenz96;
