//! C strings together with the null-terminated pointer array that
//! `execve` takes, owned by one value so that no safe code can free a
//! string while the array still points at it (the idea of Rust std's own
//! `CStringArray` in its process-spawn code).

use std::ffi::{CStr, CString};
use std::os::raw::c_char;

/// Owned C strings and a null-terminated array of pointers to them.
///
/// Both fields are private and nothing hands out `&mut` access to either,
/// so the pointers stay valid for as long as the value lives: a `CString`'s
/// bytes live on the heap and do not move when the `Vec` holding it moves.
///
/// ```compile_fail,E0616
/// let a = cordon::plan::CStringArray::new(vec![c"x".to_owned()]);
/// let mut a = a;
/// a.strings.clear(); // private: the pointer array cannot be left dangling
/// ```
///
/// Reading is what the type offers:
///
/// ```
/// let a = cordon::plan::CStringArray::new(vec![c"x".to_owned()]);
/// assert_eq!(a.len(), 1);
/// assert_eq!(a.get(0), Some(c"x"));
/// ```
#[derive(Debug)]
pub struct CStringArray {
    strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CStringArray {
    /// Take `strings` and build their pointer array.
    pub fn new(strings: Vec<CString>) -> CStringArray {
        let ptrs = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        CStringArray { strings, ptrs }
    }

    /// The null-terminated array of pointers to the strings (for execve),
    /// valid while `self` lives.
    pub fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }

    /// Number of strings (the array holds one more entry, the null).
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether there are no strings.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// The string at `i`.
    pub fn get(&self, i: usize) -> Option<&CStr> {
        self.strings.get(i).map(CString::as_c_str)
    }

    /// The strings, in order.
    pub fn iter(&self) -> impl Iterator<Item = &CStr> {
        self.strings.iter().map(CString::as_c_str)
    }

    /// Overwrite every string with zeros, as dropping does, but leave its
    /// buffer allocated for good; the value is empty afterwards (its
    /// pointer array is the null alone, written in place). For a process
    /// about to exit: see [`crate::plan::Plan::end_at_exit`].
    pub(crate) fn zeroize_and_leak(&mut self) {
        let mut strings = std::mem::ManuallyDrop::new(std::mem::take(&mut self.strings));
        for s in strings.drain(..) {
            // No reallocation: the same heap buffer, now a Vec.
            let mut bytes = s.into_bytes_with_nul();
            crate::secret::zeroize(&mut bytes);
            std::mem::forget(bytes);
        }
        // Capacity for one entry is there (it held the strings' and the
        // null): no allocation.
        self.ptrs.clear();
        self.ptrs.push(std::ptr::null());
    }
}

impl Drop for CStringArray {
    /// Overwrite every string with zeros before freeing it: an `envp` may
    /// hold secrets (`--secret-env`), and the parent's copy must not
    /// outlive the plan in freed memory.
    fn drop(&mut self) {
        for s in std::mem::take(&mut self.strings) {
            // No reallocation: the same heap buffer, now a Vec.
            let mut bytes = s.into_bytes_with_nul();
            crate::secret::zeroize_vec(&mut bytes);
        }
    }
}

// SAFETY: the raw pointers point into heap buffers owned by the same value
// (`strings`), which is private and never mutated after `new`: sending the
// value to another thread sends the buffers with it.
unsafe impl Send for CStringArray {}
// SAFETY: as above; `&CStringArray` gives only read access to the strings
// and a copy of the pointer array's address, and nothing mutates either.
unsafe impl Sync for CStringArray {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroize_and_leak_leaves_an_empty_array_and_zeros_where_the_strings_were() {
        let mut a = CStringArray::new(vec![c"SECRET=hunter2".to_owned(), c"B=1".to_owned()]);
        let first = a.get(0).unwrap().as_ptr();
        a.zeroize_and_leak();
        assert!(a.is_empty());
        assert_eq!(a.iter().count(), 0);
        // SAFETY: as_ptr points at the pointer array, which holds at least
        // the null; the string's buffer was leaked, so `first` still
        // points at 15 allocated bytes.
        unsafe {
            assert!((*a.as_ptr()).is_null());
            let bytes = std::slice::from_raw_parts(first.cast::<u8>(), 15);
            assert_eq!(bytes, &[0u8; 15]);
        }
    }

    #[test]
    fn pointers_follow_the_strings_and_end_with_null() {
        let a = CStringArray::new(vec![c"ab".to_owned(), c"c".to_owned()]);
        let b = a; // moving the value keeps the strings' heap buffers in place
        assert_eq!(b.len(), 2);
        // SAFETY: the array has len() + 1 entries, the first two point at
        // strings owned by `b`.
        unsafe {
            assert_eq!(CStr::from_ptr(*b.as_ptr()), c"ab");
            assert_eq!(CStr::from_ptr(*b.as_ptr().add(1)), c"c");
            assert!((*b.as_ptr().add(2)).is_null());
        }
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![c"ab", c"c"]);
    }
}
