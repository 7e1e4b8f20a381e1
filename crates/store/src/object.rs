//! Values that live in their own allocation, pointed to by an entry.
//!
//! Strings normally live inline in the entry; a string becomes an [`Object::Str`] when it is
//! edited in place (APPEND, SETRANGE, SETBIT, ...) so repeated edits are amortised, which is
//! also when Redis switches a string to its `raw` encoding. Collections are added here by the
//! data-type work.

use crate::entry::Kind;

/// A heap value owned by one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A string edited in place (`raw` encoding).
    Str(Vec<u8>),
}

impl Object {
    /// The Redis type of the value.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Str(_) => Kind::String,
        }
    }

    /// Heap bytes this object holds beyond the entry (an estimate of the allocator's figure).
    pub fn heap_size(&self) -> usize {
        match self {
            Object::Str(v) => std::mem::size_of::<Object>() + v.capacity(),
        }
    }
}
