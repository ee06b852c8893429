//! What a method returns: its members' values at every state.

use nalgebra::{DMatrix, DVector};

use super::dense;
use crate::io::Array;

/// What a method knows at every state: `members × length × dim` values, member-major.
#[derive(Clone, Debug)]
pub struct Estimate {
    /// Members (1 for deterministic methods).
    pub members: usize,
    /// States.
    pub length: usize,
    /// Values per state.
    pub dim: usize,
    /// The values, `[member][state][value]`.
    pub data: Vec<f64>,
}

impl Estimate {
    /// Zeros, to be filled state by state with [`set`](Self::set).
    pub(super) fn zeros(members: usize, length: usize, dim: usize) -> Self {
        Self {
            members,
            length,
            dim,
            data: zeroed(members * length * dim),
        }
    }

    /// The `D × N` ensemble `e` at state `t`.
    pub(super) fn set(&mut self, t: usize, e: &DMatrix<f64>) {
        let (dim, length) = (self.dim, self.length);
        for (n, col) in e.column_iter().enumerate() {
            let at = (n * length + t) * dim;
            self.data[at..at + dim].copy_from_slice(col.as_slice());
        }
    }

    /// `E_t ← E_t G` for the ensembles of the states in `range` (`G` is `N × N`): one product,
    /// as the states of a range are consecutive rows of `(range.len() · D) × N` with the
    /// members `length · D` values apart.
    pub(super) fn right_multiply(&mut self, range: std::ops::Range<usize>, g: &DMatrix<f64>) {
        let (dim, length, n) = (self.dim, self.length, self.members);
        let rows = range.len() * dim;
        if rows == 0 {
            return;
        }
        let mut old = DMatrix::zeros(rows, n);
        for (j, mut col) in old.column_iter_mut().enumerate() {
            let at = (j * length + range.start) * dim;
            col.copy_from_slice(&self.data[at..at + rows]);
        }
        let dst = self.data[range.start * dim..].as_mut_ptr();
        // SAFETY: element (i, j) of the output is `data[(j · length + start) · D + i]`, inside
        // `data` for i < rows and j < N; `old` is a separate allocation.
        unsafe {
            dense::gemm_raw(
                (rows, n, n),
                (dst, 1, (length * dim) as isize),
                (old.as_ptr(), 1, rows as isize),
                (g.as_ptr(), 1, n as isize),
                1.0,
                false,
            )
        }
    }

    /// From one state vector per state (one member).
    pub(super) fn from_states(states: &[DVector<f64>]) -> Self {
        let dim = states[0].len();
        Self {
            members: 1,
            length: states.len(),
            dim,
            data: states.iter().flat_map(|s| s.iter().copied()).collect(),
        }
    }

    /// The ensemble as an f32 `(members, length, dim)` array.
    pub fn to_array(&self) -> Array {
        Array::new(
            vec![self.members, self.length, self.dim],
            self.data.iter().map(|&v| v as f32).collect(),
        )
    }

    /// The ensemble mean at state `t`.
    pub fn mean(&self, t: usize) -> DVector<f64> {
        let mut m = DVector::zeros(self.dim);
        for n in 0..self.members {
            let at = (n * self.length + t) * self.dim;
            m += DVector::from_column_slice(&self.data[at..at + self.dim]);
        }
        m / self.members as f64
    }

    /// The ensemble covariance at state `t` (unbiased; zero for one member).
    pub fn cov(&self, t: usize) -> DMatrix<f64> {
        let m = self.mean(t);
        let mut c = DMatrix::zeros(self.dim, self.dim);
        for n in 0..self.members {
            let at = (n * self.length + t) * self.dim;
            let a = DVector::from_column_slice(&self.data[at..at + self.dim]) - &m;
            c += &a * a.transpose();
        }
        c / (self.members.max(2) - 1) as f64
    }
}

/// `len` zeros. An output of many states is megabytes, and the first touch of each 4 KiB page
/// costs a page fault (most of the time of the cheap filters on a virtual machine): on Linux the
/// buffer is advised into transparent huge pages, 512 times fewer faults.
fn zeroed(len: usize) -> Vec<f64> {
    let v = vec![0.0; len];
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if len * 8 >= 4 << 20 {
        let page = 4096;
        let start = (v.as_ptr() as usize).next_multiple_of(page);
        let end = (v.as_ptr() as usize + len * 8) / page * page;
        // SAFETY: an advice on whole pages inside the allocation; it changes no contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
    v
}
