//! Values that live in their own allocation, pointed to by an entry.
//!
//! Strings normally live inline in the entry; a string becomes an [`Object::Str`] when it is
//! edited in place (APPEND, SETRANGE, SETBIT, ...) so repeated edits are amortised, which is
//! also when Redis switches a string to its `raw` encoding.

use crate::entry::Kind;
use crate::hash::Hash;
use crate::list::List;
use crate::set::Set;
use crate::stream::Stream;
use crate::zset::ZSet;

/// A heap value owned by one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A string edited in place (`raw` encoding).
    Str(Vec<u8>),
    List(List),
    Hash(Hash),
    Set(Set),
    ZSet(ZSet),
    Stream(Box<Stream>),
}

impl Object {
    /// The Redis type of the value.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Str(_) => Kind::String,
            Object::List(_) => Kind::List,
            Object::Hash(_) => Kind::Hash,
            Object::Set(_) => Kind::Set,
            Object::ZSet(_) => Kind::ZSet,
            Object::Stream(_) => Kind::Stream,
        }
    }

    /// Heap bytes this object holds beyond the entry (an estimate of the allocator's figure).
    pub fn heap_size(&self) -> usize {
        let own = crate::hash::alloc_size(std::mem::size_of::<Object>());
        own + match self {
            Object::Str(v) => v.capacity(),
            Object::List(l) => l.heap_size(),
            Object::Hash(h) => h.heap_size(),
            Object::Set(s) => s.heap_size(),
            Object::ZSet(z) => z.heap_size(),
            Object::Stream(s) => crate::hash::alloc_size(std::mem::size_of::<Stream>()) + s.heap_size(),
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Object::Str(_) => "raw",
            Object::List(l) => l.encoding(),
            Object::Hash(h) => h.encoding(),
            Object::Set(s) => s.encoding(),
            Object::ZSet(z) => z.encoding(),
            Object::Stream(s) => s.encoding(),
        }
    }

    /// Whether the collection is empty (Redis deletes a key whose collection empties).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Object::Str(_) => false,
            Object::List(l) => l.is_empty(),
            Object::Hash(h) => h.is_empty(),
            Object::Set(s) => s.is_empty(),
            Object::ZSet(z) => z.is_empty(),
            // A stream key stays when its last entry goes.
            Object::Stream(_) => false,
        }
    }
}
