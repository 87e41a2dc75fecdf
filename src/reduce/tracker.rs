//! The dump side of the class tracker: which id a class (or TypeVar) travels under
//! (docs/FORMAT.md, "Dynamic classes"). The maps live in the bootstrap (`_BY_ID`: lineage to
//! object, `_BY_OBJECT`: object to its current id), which the load side shares.
//!
//! - First dump: the class's content id (`classid.rs`), with a `#n` suffix when another live
//!   class of this process already holds it. That id is the class's **lineage** for the rest
//!   of its life, so the same definition gets the same bytes in every process.
//! - Later dumps: the id the class has, unless it changed since that id was given. Then it
//!   gets the next **generation**, `LINEAGE@GEN@CONTENT`: a receiver holding the lineage
//!   applies the new state to the class it has (cloudpickle's worker sees a patched method the
//!   same way), and one holding an equal or newer generation changes nothing.
//! - Whether it changed: CPython's type version tag (`ffi::type_version_tag`) when it is the
//!   one recorded with the id, so an unchanged class costs no description; otherwise the class
//!   is described again and compared with the content its id names.
//!
//! What the version tag cannot see: changes that do not write the class dict (a list held
//! by the class mutated in place, a global its methods read, a method's `__code__` replaced).
//! Those reach a receiver only with the class's next write, as with any tracked class.

use std::sync::{LazyLock, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};
use rustc_hash::FxHashMap;

use super::classid;
use crate::bootstrap::boot;
use crate::ffi::{self, addr};

/// Class address -> (version tag, id) as of the last dump. An address seen with the same
/// non-zero tag is the same class, unchanged: tags are never reused.
static RECENT: LazyLock<Mutex<FxHashMap<usize, (u32, String)>>> =
    LazyLock::new(|| Mutex::new(FxHashMap::default()));
/// Entries kept before the cache starts over (dead classes leave entries behind).
const RECENT_MAX: usize = 4096;

/// The bootstrap's tracker lock, held for a scope.
struct Locked<'py>(Bound<'py, PyAny>);

impl<'py> Locked<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let lock = boot(py).module.bind(py).getattr("_TRACKER_LOCK")?;
        lock.call_method0("acquire")?;
        Ok(Locked(lock))
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.call_method0("release");
    }
}

fn maps(py: Python<'_>) -> PyResult<(Bound<'_, PyAny>, Bound<'_, PyAny>)> {
    let module = boot(py).module.bind(py);
    Ok((module.getattr("_BY_ID")?, module.getattr("_BY_OBJECT")?))
}

/// 32 random hex digits (as `uuid.uuid4().hex`, without importing `uuid`: a first import
/// inside a deep dump in a small thread would compile its source there, and 3.15's parser
/// refuses to run that short of stack).
fn random_id(py: Python<'_>) -> PyResult<String> {
    py.import("os")?
        .call_method1("urandom", (16,))?
        .call_method0("hex")?
        .extract()
}

/// The id `obj` is tracked under, or `content` (made unique among live objects of this
/// process by a `#n` suffix) recorded as its lineage. Objects that cannot be weak-dict keys
/// (a metaclass with `__eq__` and no `__hash__`) are not tracked: `content` as it is.
pub fn tracked_id<'py>(obj: &Bound<'py, PyAny>, content: &str) -> PyResult<Bound<'py, PyString>> {
    let py = obj.py();
    if obj.hash().is_err() {
        return Ok(PyString::new(py, content));
    }
    let (by_id, by_object) = maps(py)?;
    let _lock = Locked::new(py)?;
    let known = by_object.call_method1("get", (obj,))?;
    if !known.is_none() {
        return Ok(known.cast_into::<PyString>()?);
    }
    let mut id = content.to_owned();
    let mut n = 1;
    while !by_id.call_method1("get", (&id,))?.is_none() {
        n += 1;
        id = format!("{content}#{n}");
    }
    let id = PyString::new(py, &id);
    by_id.set_item(&id, obj)?;
    by_object.set_item(obj, &id)?;
    Ok(id)
}

/// (lineage, generation, content) of an id: `L` is generation 0 whose content is `L` without
/// its `#n` suffix; `L@G@C` is generation G with content C.
fn parts(id: &str) -> (&str, u64, &str) {
    let mut it = id.splitn(3, '@');
    let lineage = it.next().unwrap_or(id);
    match (it.next().and_then(|g| g.parse().ok()), it.next()) {
        (Some(generation), Some(content)) => (lineage, generation, content),
        _ => (lineage, 0, lineage.split('#').next().unwrap_or(lineage)),
    }
}

/// The id `cls` travels under in this dump.
pub fn class_id<'py>(cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyString>> {
    let py = cls.py();
    let key = addr(cls.as_any());
    let tag = ffi::type_version_tag(cls.as_any());
    // The tag recorded with the id at the last dump, if any.
    let seen = RECENT
        .lock()
        .expect("class id cache")
        .get(&key)
        .map(|(seen, id)| (*seen, id.clone()));
    if let Some((seen, id)) = &seen {
        if tag != 0 && *seen == tag {
            return Ok(PyString::new(py, id));
        }
    }
    // A tag that moved since the last dump means the class dict was written (tags are only
    // reset by writes, and never reused).
    let written = seen.is_some_and(|(seen, _)| seen != tag);
    // Described before the tracker lock is taken: describing runs user code
    // (`__reduce_ex__`), which must not run under a lock that loading threads wait for.
    let content = classid::content_id(cls)?;
    if cls.hash().is_err() {
        return Ok(PyString::new(
            py,
            &content.map_or_else(|| random_id(py), Ok)?,
        ));
    }
    let (_, by_object) = maps(py)?;
    let known = {
        let _lock = Locked::new(py)?;
        by_object.call_method1("get", (cls,))?
    };
    let id = if known.is_none() {
        let content = content.map_or_else(|| random_id(py), Ok)?;
        tracked_id(cls.as_any(), &content)?
    } else {
        let known = known.cast_into::<PyString>()?;
        let known_text = known.to_str()?.to_owned();
        let (lineage, generation, was) = parts(&known_text);
        let changed = match &content {
            Some(content) => content != was,
            // No description to compare: only a tag seen to move says it changed. (A class
            // loaded here and never dumped before is taken as it came: a receiver that
            // guessed otherwise would send back a generation that overwrites the sender's.)
            None => written,
        };
        if !changed {
            known
        } else {
            // Changed in place since its id was given: the next generation.
            let content = content.map_or_else(|| random_id(py), Ok)?;
            let id = PyString::new(py, &format!("{lineage}@{}@{content}", generation + 1));
            let _lock = Locked::new(py)?;
            // Another thread may have moved it on meanwhile: the later generation stands.
            let now = by_object.call_method1("get", (cls,))?;
            match now.cast::<PyString>() {
                Ok(now) if parts(now.to_str()?).1 > generation => now.clone(),
                _ => {
                    by_object.set_item(cls, &id)?;
                    id
                }
            }
        }
    };
    if tag != 0 {
        let mut recent = RECENT.lock().expect("class id cache");
        if recent.len() >= RECENT_MAX {
            recent.clear();
        }
        recent.insert(key, (tag, id.to_str()?.to_owned()));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::parts;

    #[test]
    fn id_parts() {
        assert_eq!(parts("abc"), ("abc", 0, "abc"));
        assert_eq!(parts("abc#2"), ("abc#2", 0, "abc"));
        assert_eq!(parts("abc#2@3@def"), ("abc#2", 3, "def"));
        assert_eq!(parts("abc@x@def"), ("abc", 0, "abc"));
    }
}
