//! Buffers aligned to a cache line, for the solver's spectra and grid.

/// A buffer whose values start at a 64-byte boundary (a cache line, an AVX-512 register), so
/// that the loops over the spectra load and store whole lines.
#[derive(Default)]
pub(super) struct Aligned<T> {
    buf: Vec<T>,
    at: usize,
    len: usize,
}

impl<T: Copy + Default> Aligned<T> {
    /// `len` default values.
    pub(super) fn new(len: usize) -> Self {
        let spare = 64 / size_of::<T>().max(1);
        let buf = vec![T::default(); len + spare];
        let at = buf.as_ptr().align_offset(64).min(spare);
        Self { buf, at, len }
    }
}

impl<T> std::ops::Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.at..self.at + self.len]
    }
}

impl<T> std::ops::DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.at..self.at + self.len]
    }
}

impl<'a, T> IntoIterator for &'a Aligned<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Aligned<T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}
