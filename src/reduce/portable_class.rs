//! Classes in portable mode whose stdlib machinery differs between Python versions: what that
//! machinery generated is left out of the stream, and what the class was built from travels
//! in a version-neutral form that the receiver's own stdlib builds the class from again
//! (docs/FORMAT.md, "Portable mode"). `class.rs` calls [`prepare`] on the class dict it made.
//!
//! - **Annotations (3.14+, PEP 649/749)**: a class keeps them in an `__annotate__` function
//!   the compiler generated (no `def` to ship as source) that closes over the class dict.
//!   They travel evaluated, as `__annotations__` (`satchel._source.annotations_of`).
//! - **namedtuple / typing.NamedTuple**: `collections.namedtuple(name, fields, defaults=...,
//!   module=...)` builds it again (its `__new__` was compiled from a string), then the class
//!   state adds what the class body added (methods, docstring, annotations, `__orig_bases__`).
//! - **Enum, Flag, IntFlag...**: the members and what the class body defined; the metaclass's
//!   bookkeeping (`_member_map_`, `_iter_member_`, the Flag operators...) is the receiver's.
//! - **dataclasses**: the fields (`dataclasses.field` arguments) and the `@dataclass` options
//!   as plain data; the receiver runs its own `dataclasses.dataclass` on the class.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use super::call_then_set;
use crate::bootstrap::boot;
use crate::error::Error;
use crate::ffi::type_addr;
use crate::typeref::typerefs;

/// A class's own attributes as `class.rs` collects them, sorted by name.
pub type Attrs<'py> = Vec<(Bound<'py, PyString>, Bound<'py, PyAny>)>;

/// What `class.rs` does next with a portable class.
pub enum Prepared<'py> {
    /// The whole reduction (a namedtuple).
    Done(Bound<'py, PyAny>),
    /// A dataclass: `make_skeleton_class`, then `dataclass_setstate` with the state
    /// `(attrs, options)`, `options` being the `@dataclass` arguments that are not defaults.
    Dataclass(Bound<'py, PyDict>),
    /// Nothing more (its attributes may have been rewritten).
    Plain,
}

/// Rewrite `attrs` of class `cls` for portable mode; see the module docs.
pub fn prepare<'py>(
    cls: &Bound<'py, PyType>,
    attrs: &mut Attrs<'py>,
    class_id: &Bound<'py, PyAny>,
) -> PyResult<Prepared<'py>> {
    let py = cls.py();
    if typerefs(py).lazy_annotations {
        lazy_annotations(cls, attrs)?;
    }
    if let Some(reduced) = namedtuple(cls, attrs, class_id)? {
        return Ok(Prepared::Done(reduced));
    }
    if cls
        .get_type()
        .is_subclass(typerefs(py).enum_meta.bind(py))?
    {
        enum_machinery_dropped(attrs)?;
        return Ok(Prepared::Plain);
    }
    if let Some(options) = dataclass(cls, attrs)? {
        return Ok(Prepared::Dataclass(options));
    }
    Ok(Prepared::Plain)
}

fn name_of<'a>(attr: &'a (Bound<'_, PyString>, Bound<'_, PyAny>)) -> &'a str {
    attr.0.to_str().unwrap_or("")
}

fn put<'py>(attrs: &mut Attrs<'py>, name: &str, value: Bound<'py, PyAny>) {
    let py = value.py();
    if let Some(slot) = attrs.iter_mut().find(|a| name_of(a) == name) {
        slot.1 = value;
        return;
    }
    // Where class.rs's order puts it: by name, `__module__` (if it comes first) before all.
    let key = |k: &str| (k != "__module__", k.to_owned());
    let at = attrs
        .iter()
        .position(|a| key(name_of(a)) > key(name))
        .unwrap_or(attrs.len());
    attrs.insert(at, (PyString::new(py, name), value));
}

fn get<'a, 'py>(attrs: &'a Attrs<'py>, name: &str) -> Option<&'a Bound<'py, PyAny>> {
    attrs.iter().find(|a| name_of(a) == name).map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------------
// Annotations (3.14+)
// ---------------------------------------------------------------------------------------------

/// The compiler's and the annotation machinery's own entries of a 3.14+ class dict: the
/// `__annotate__` function (stored as `__annotate_func__`, or `__annotate__` when set by
/// hand), its cache, and the cells the compiler passes to `type.__new__` (typing.NamedTuple
/// copies them onto the class it makes).
const LAZY_ANNOTATION_ATTRS: [&str; 5] = [
    "__annotate__",
    "__annotate_func__",
    "__annotations_cache__",
    "__classdictcell__",
    "__classcell__",
];

fn lazy_annotations<'py>(cls: &Bound<'py, PyType>, attrs: &mut Attrs<'py>) -> PyResult<()> {
    let had = attrs.len();
    attrs.retain(|a| !LAZY_ANNOTATION_ATTRS.contains(&name_of(a)));
    if attrs.len() == had || get(attrs, "__annotations__").is_some() {
        return Ok(());
    }
    let annotations = evaluated_annotations(cls.as_any())?;
    if annotations.cast::<PyDict>().is_ok_and(|d| !d.is_empty()) {
        put(attrs, "__annotations__", annotations);
    }
    Ok(())
}

/// `obj.__annotations__`, for a function: on 3.14+, where they are computed from
/// `__annotate__` and a forward reference raises NameError, the sender's evaluation with
/// forward references as text (`satchel._source.annotations_of`) when that fails.
pub fn annotations_of<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    match obj.getattr(pyo3::intern!(py, "__annotations__")) {
        Err(_) if typerefs(py).lazy_annotations => evaluated_annotations(obj),
        other => other,
    }
}

/// `satchel._source.annotations_of(obj)` (3.14+): the annotations as a plain dict.
fn evaluated_annotations<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    static ANNOTATIONS_OF: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    ANNOTATIONS_OF
        .get_or_try_init(py, || -> PyResult<_> {
            Ok(py
                .import("satchel._source")?
                .getattr("annotations_of")?
                .unbind())
        })?
        .bind(py)
        .call1((obj,))
}

// ---------------------------------------------------------------------------------------------
// namedtuple and typing.NamedTuple
// ---------------------------------------------------------------------------------------------

/// What `collections.namedtuple` puts in the class dict (3.9 to 3.15) besides one accessor per
/// field, and `typing.NamedTuple`'s additions to it: the receiver's `namedtuple` makes its
/// own. Methods among them that the class body overrides (`__repr__`) are kept.
const NAMEDTUPLE_MADE: [&str; 13] = [
    "__slots__",
    "_fields",
    "_field_defaults",
    "_fields_defaults",
    "_field_types",
    "__match_args__",
    "__new__",
    "_make",
    "_replace",
    "__replace__",
    "__repr__",
    "_asdict",
    "__getnewargs__",
];

/// A class `collections.namedtuple` made (a `typing.NamedTuple` too): `make_class(
/// collections.namedtuple, (name, fields), {"defaults": ..., "module": ...}, class_id)`, then
/// `class_setstate` with what its class body added.
fn namedtuple<'py>(
    cls: &Bound<'py, PyType>,
    attrs: &mut Attrs<'py>,
    class_id: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = cls.py();
    let own = cls.getattr("__dict__")?;
    for name in ["_fields", "_make", "__new__"] {
        if !own.contains(name)? {
            return Ok(None);
        }
    }
    let bases = cls.getattr("__bases__")?.cast_into::<PyTuple>()?;
    if !bases.iter().any(|b| b.is(py.get_type::<PyTuple>())) {
        return Ok(None); // not a tuple: someone else's `_fields`
    }
    if bases.len() != 1 {
        let what = format!("namedtuple '{}'", cls.getattr("__qualname__")?);
        let reason = "collections.namedtuple makes classes based on tuple alone; this one \
                      also has other bases (a generic NamedTuple)";
        return Err(Error::NotPortable {
            what,
            reason: reason.into(),
        }
        .into_pyerr(py));
    }
    let fields = cls.getattr("_fields")?.cast_into::<PyTuple>()?;
    let field_defaults = cls.getattr("_field_defaults")?;
    let mut defaults = Vec::new();
    for field in fields.iter() {
        if let Some(value) = field_defaults.cast::<PyDict>()?.get_item(&field)? {
            defaults.push(value);
        }
    }
    let module = cls.getattr("__module__")?;
    let kwargs = PyDict::new(py);
    if !defaults.is_empty() {
        kwargs.set_item("defaults", PyTuple::new(py, defaults)?)?;
    }
    kwargs.set_item("module", &module)?;
    let field_names: Vec<String> = fields
        .iter()
        .map(|f| f.extract::<String>())
        .collect::<PyResult<_>>()?;
    let mut kept = Vec::with_capacity(attrs.len());
    for (name, value) in attrs.drain(..) {
        let key = name.to_str()?;
        let made = field_names.iter().any(|f| f == key)
            || (NAMEDTUPLE_MADE.contains(&key) && !defined_in(&value, &module)?);
        if !made {
            kept.push((name, value));
        }
    }
    *attrs = kept;
    let namedtuple = py.import("collections")?.getattr("namedtuple")?;
    let args = PyTuple::new(
        py,
        [
            namedtuple,
            PyTuple::new(py, [cls.getattr("__name__")?, fields.into_any()])?.into_any(),
            kwargs.into_any(),
            class_id.clone(),
        ],
    )?;
    let boot = boot(py);
    Ok(Some(call_then_set(
        &boot.make_class,
        args,
        state(py, attrs, None)?,
        &boot.class_setstate,
    )?))
}

/// Whether `value` is a function (or a class or static method of one) of module `module`:
/// one the class body defined, not one `namedtuple` or `dataclass` generated.
fn defined_in(value: &Bound<'_, PyAny>, module: &Bound<'_, PyAny>) -> PyResult<bool> {
    let func = unwrap(value);
    if type_addr(&func) != typerefs(value.py()).function {
        return Ok(false);
    }
    Ok(func
        .getattr("__module__")
        .is_ok_and(|m| m.eq(module).unwrap_or(false)))
}

/// The function inside a classmethod, staticmethod or bound method.
fn unwrap<'py>(value: &Bound<'py, PyAny>) -> Bound<'py, PyAny> {
    let refs = typerefs(value.py());
    let ty = type_addr(value);
    if ty == refs.classmethod || ty == refs.staticmethod || ty == refs.method {
        if let Ok(func) = value.getattr("__func__") {
            return func;
        }
    }
    value.clone()
}

/// The class state: `(attrs,)`, or `(attrs, options)` for a dataclass (`Prepared::Dataclass`).
pub fn state<'py>(
    py: Python<'py>,
    attrs: &Attrs<'py>,
    options: Option<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = PyDict::new(py).into_any();
    for (k, v) in attrs {
        dict.set_item(k, v)?;
    }
    Ok(match options {
        Some(options) => PyTuple::new(py, [dict, options.into_any()])?,
        None => PyTuple::new(py, [dict])?,
    }
    .into_any())
}

// ---------------------------------------------------------------------------------------------
// Enum
// ---------------------------------------------------------------------------------------------

/// The enum metaclass's bookkeeping (3.9 to 3.15), rebuilt from the members by the
/// receiver's `enum` (`make_skeleton_enum` builds the class through it).
const ENUM_BOOKKEEPING: [&str; 15] = [
    "_member_names_",
    "_member_map_",
    "_value2member_map_",
    "_member_type_",
    "_new_member_",
    "_use_args_",
    "_value_repr_",
    "_unhashable_values_",
    "_unhashable_values_map_",
    "_hashable_values_",
    "_boundary_",
    "_flag_mask_",
    "_singles_mask_",
    "_all_bits_",
    "_inverted_",
];

/// Leave out of an enum's state what the metaclass put there: its bookkeeping, and the
/// `_sunder_`/`__dunder__` methods it chose from the `enum` module or the member type
/// (`Enum.__new__`, `Flag.__or__`, `_iter_member_ = _iter_member_by_def_` (3.11+),
/// `int.__format__` for an IntEnum...). Those differ between versions (3.9 has no
/// `_iter_member_by_def_`), and the receiver's metaclass chooses its own. What the class body
/// defined (a Python function of its own module, or plain data) stays.
fn enum_machinery_dropped(attrs: &mut Attrs<'_>) -> PyResult<()> {
    let mut kept = Vec::with_capacity(attrs.len());
    for (name, value) in attrs.drain(..) {
        let key = name.to_str()?;
        let special = key.len() > 2 && key.starts_with('_') && key.ends_with('_');
        if !special || !(ENUM_BOOKKEEPING.contains(&key) || enum_machinery(&value)?) {
            kept.push((name, value));
        }
    }
    *attrs = kept;
    Ok(())
}

fn enum_machinery(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = value.py();
    let func = unwrap(value);
    if type_addr(&func) == typerefs(py).function {
        return Ok(func
            .getattr("__module__")
            .is_ok_and(|m| m.extract::<&str>().is_ok_and(|m| m == "enum")));
    }
    // A builtin method or slot (`int.__repr__`): the member type's, chosen by the metaclass.
    Ok(func.is_callable() && !crate::ffi::is_type(&func))
}

// ---------------------------------------------------------------------------------------------
// dataclasses
// ---------------------------------------------------------------------------------------------

/// Methods @dataclass generates (3.9 to 3.15).
const DATACLASS_METHODS: [&str; 13] = [
    "__init__",
    "__repr__",
    "__eq__",
    "__hash__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__setattr__",
    "__delattr__",
    "__getstate__",
    "__setstate__",
    "__replace__",
];

/// `@dataclass` arguments and their defaults: only the others travel.
const DATACLASS_OPTIONS: [(&str, bool); 8] = [
    ("init", true),
    ("repr", true),
    ("eq", true),
    ("order", false),
    ("unsafe_hash", false),
    ("frozen", false),
    ("match_args", true),
    ("kw_only", false),
];

/// For a dataclass: leave out what `@dataclass` made (its methods, `__dataclass_fields__` and
/// `__dataclass_params__`, whose classes differ between versions), put each field of its own
/// as a `dataclasses.Field` class attribute (where its class body had the default or the
/// `field(...)`; reduced by `make_field` in portable mode), and return the options.
fn dataclass<'py>(
    cls: &Bound<'py, PyType>,
    attrs: &mut Attrs<'py>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let py = cls.py();
    let own = cls.getattr("__dict__")?;
    let (Ok(params), Ok(fields)) = (
        own.get_item("__dataclass_params__"),
        own.get_item("__dataclass_fields__"),
    ) else {
        return Ok(None);
    };
    if own.get_item("__slots__").is_ok() {
        let what = format!("dataclass '{}'", cls.getattr("__qualname__")?);
        let reason = "@dataclass(slots=True) returns a new class, which the class skeleton \
                      the stream builds first cannot become";
        return Err(Error::NotPortable {
            what,
            reason: reason.into(),
        }
        .into_pyerr(py));
    }
    attrs.retain(|a| {
        let key = name_of(a);
        key != "__dataclass_params__"
            && key != "__dataclass_fields__"
            && !(DATACLASS_METHODS.contains(&key) && generated(&a.1))
            // 3.15 leaves a class without a docstring one computed on first access
            // (`dataclasses._AutoDocstring`); the receiver's @dataclass makes its own.
            && !(key == "__doc__" && !(a.1.is_none() || a.1.is_instance_of::<PyString>()))
    });
    let annotations = match get(attrs, "__annotations__") {
        Some(a) => a.clone(),
        None => PyDict::new(py).into_any(),
    };
    for item in fields.call_method0("items")?.try_iter()? {
        let (name, field): (Bound<'py, PyString>, Bound<'py, PyAny>) = item?.extract()?;
        // A ClassVar's class attribute is its value, which the state already has.
        let kind = field.getattr("_field_type")?.getattr("name")?;
        if annotations.contains(&name)? && kind.extract::<&str>()? != "_FIELD_CLASSVAR" {
            put(attrs, name.to_str()?, field);
        }
    }
    let options = PyDict::new(py);
    for (option, default) in DATACLASS_OPTIONS {
        if let Some(value) = params.getattr_opt(option)? {
            if value.is_truthy()? != default {
                options.set_item(option, value)?;
            }
        }
    }
    Ok(Some(options))
}

/// A method @dataclass generated: compiled from text (`co_filename` "<string>"; `__repr__` is
/// wrapped by `reprlib.recursive_repr`, so look through `__wrapped__`), or a function of the
/// dataclasses module itself (3.13's `__replace__` is `dataclasses._replace`). (The
/// `__hash__ = None` that `eq=True` sets stays: the receiver's @dataclass keeps it as is.)
fn generated(value: &Bound<'_, PyAny>) -> bool {
    let mut inner = value.clone();
    for _ in 0..4 {
        match inner.getattr("__wrapped__") {
            Ok(w) => inner = w,
            Err(_) => break,
        }
    }
    if inner
        .getattr("__module__")
        .is_ok_and(|m| m.extract::<&str>().is_ok_and(|m| m == "dataclasses"))
    {
        return true;
    }
    inner
        .getattr("__code__")
        .and_then(|c| c.getattr("co_filename"))
        .is_ok_and(|f| f.to_string() == "<string>")
}
