//! The list value type (placeholder representation: replaced by the data-type work).

/// A Redis list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct List {
    len: usize,
}

impl List {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held (for memory accounting).
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }
}
