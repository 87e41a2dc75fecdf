//! Types, modules and names looked up once at module init (orjson's typeref, the safe way).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule, PyString, PyTuple};
use rustc_hash::FxHashMap;

use crate::ffi::addr;

pub struct TypeRefs {
    /// Every kind `reduce::classify_rare` recognises by exact type: type address -> kind
    /// (`reduce::KIND_TYPES` and the types made below). One hash probe, whatever the number of
    /// kinds.
    pub exact_kinds: FxHashMap<usize, crate::reduce::Kind>,
    // Exact types that reducers and `diagnose` compare against ob_type (addresses); the kinds
    // themselves are classified through `exact_kinds`.
    pub function: usize,
    pub code: usize,
    pub cell: usize,
    pub method: usize,
    pub classmethod: usize,
    pub staticmethod: usize,
    pub property: usize,
    pub lru_cache: usize,
    pub mappingproxy: usize,
    pub weak_set: usize,
    pub typevar: usize,
    pub generator: usize,
    pub coroutine: usize,
    pub async_generator: usize,
    /// itertools count, repeat, islice, chain, cycle (reduce/itertools.rs).
    pub itertools: [usize; 5],
    /// The type of `coro.__await__()`.
    pub coroutine_wrapper: usize,
    /// `abc.abstractclassmethod`, `abstractstaticmethod`, `abstractproperty`: reduced as the
    /// classmethod, staticmethod and property they subclass, under their own type.
    pub abstract_classmethod: usize,
    pub abstract_staticmethod: usize,
    pub abstract_property: usize,
    /// dict keys, values and items views, then OrderedDict's (reduce/dictview.rs).
    pub dict_views: [usize; 6],
    /// `_io` TextIOWrapper, BufferedReader, BufferedRandom, BufferedWriter and FileIO: what
    /// `open()` returns (reduce/file.rs).
    pub files: [usize; 5],
    pub builtin_function: usize,
    /// Method, slot, member and getset descriptors (their repr is stable).
    pub descriptor_types: Vec<usize>,
    /// Exact types whose values cannot refer to anything (None, bool, int, float, complex, str,
    /// bytes); `tuple` is checked item by item.
    pub atomic: [usize; 7],
    pub tuple: usize,
    /// Types whose single instance is a module attribute: type address -> (module, name).
    pub singletons: FxHashMap<usize, (Py<PyAny>, Py<PyString>)>,
    /// Interpreter types reachable only through `types`: type address -> name in `types`.
    pub builtin_types: FxHashMap<usize, Py<PyString>>,
    pub enum_meta: Py<PyAny>,
    pub generic: Py<PyAny>,
    pub abc_meta: Py<PyAny>,

    // Callables that reduction tuples name (stdlib ones pickle by reference).
    pub getattr: Py<PyAny>,
    /// `builtins.vars`, `operator.getitem` and `builtins.type`: a getset descriptor is rebuilt
    /// as `vars(owner)[name]` (reduce/stdlib.rs).
    pub vars: Py<PyAny>,
    pub getitem: Py<PyAny>,
    pub type_type: Py<PyAny>,
    /// The `__dict__` and `__weakref__` getset descriptors every heap class shares (3.15+, where
    /// their `__objclass__` is `object`); empty where each class has its own.
    pub shared_getsets: Vec<Py<PyAny>>,
    pub import_module: Py<PyAny>,
    pub method_type: Py<PyAny>,
    pub mappingproxy_type: Py<PyAny>,
    pub newtype_type: Py<PyAny>,
    pub gc_get_referents: Py<PyAny>,
    pub abc_get_dump: Py<PyAny>,
    pub sys_modules: Py<PyDict>,
    pub copyreg_dispatch: Py<PyDict>,
    pub copyreg_newobj: Py<PyAny>,
    pub copyreg_slotnames: Py<PyAny>,
    pub object_type: Py<PyAny>,
    pub bytes_io: Py<PyAny>,
    pub string_io: Py<PyAny>,
    pub bytes_type: Py<PyAny>,
    pub bytearray_type: Py<PyAny>,
    pub dict_type: Py<PyAny>,
    pub ordered_dict: Py<PyAny>,
    /// `dict.keys`, `dict.values`, `dict.items`, then OrderedDict's: a view is one of these
    /// applied to a dict (they pickle as `getattr(dict, "keys")`).
    pub dict_view_makers: [Py<PyAny>; 6],
    pub memoryview_type: Py<PyAny>,
    pub methodcaller: Py<PyAny>,
    pub sys: Py<PyAny>,
    /// `_pickle.Pickler.dump`, called unbound so `satchel.dumps` never runs a Python frame.
    pub c_dump: Py<PyAny>,
    pub pickle_loads: Py<PyAny>,
    /// `_pickle.Pickler.clear_memo`, likewise.
    pub c_clear_memo: Py<PyAny>,

    // Opcodes, from `opcode.opmap` so that renumbering between versions cannot bite.
    pub op_load_global: u8,
    /// How far LOAD_GLOBAL's oparg is shifted left of its name index: 1 on CPython 3.11+
    /// (the low bit pushes a NULL, gh-93429), 0 on PyPy 3.11 (3.10-style bytecode).
    pub load_global_shift: u8,
    pub op_store_global: u8,
    pub op_delete_global: u8,
    pub op_extended_arg: u8,
    /// LOAD_NAME, and LOAD_FROM_DICT_OR_GLOBALS where it exists (3.12+): class-body reads.
    pub op_load_name: Vec<u8>,
    /// Functions have `__type_params__` (PEP 695, 3.12+).
    pub has_type_params: bool,
    /// Annotations are computed lazily (PEP 649, 3.14+).
    pub lazy_annotations: bool,
    /// `_pickle.Pickler` calls `reducer_override` before looking in its memo (PyPy 3.11;
    /// `reduce/memo.rs`).
    pub override_before_memo: bool,
    /// `FunctionType(code, globals)` takes its `__qualname__` from `co_qualname` (CPython
    /// 3.11+; PyPy 3.11 takes `co_name`).
    pub function_derives_qualname: bool,
}

static TYPEREFS: PyOnceLock<TypeRefs> = PyOnceLock::new();

pub fn typerefs(py: Python<'_>) -> &'static TypeRefs {
    TYPEREFS
        .get_or_try_init(py, || TypeRefs::load(py))
        .expect("satchel: type references are loaded at module init")
}

pub fn init(py: Python<'_>) -> PyResult<()> {
    TYPEREFS.get_or_try_init(py, || TypeRefs::load(py))?;
    Ok(())
}

fn attr<'py>(module: &Bound<'py, PyModule>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    module.getattr(name)
}

impl TypeRefs {
    fn load(py: Python<'_>) -> PyResult<Self> {
        let builtins = py.import("builtins")?;
        let types = py.import("types")?;
        let functools = py.import("functools")?;
        let weakref = py.import("weakref")?;
        let typing = py.import("typing")?;
        let dataclasses = py.import("dataclasses")?;
        let enum_mod = py.import("enum")?;
        let abc = py.import("abc")?;
        let opcode = py.import("opcode")?;
        let opmap = opcode.getattr("opmap")?;
        let op = |name: &str| -> PyResult<u8> { opmap.get_item(name)?.extract::<u8>() };

        let ta = |m: &Bound<'_, PyModule>, n: &str| -> PyResult<usize> { Ok(addr(&attr(m, n)?)) };

        let mut singletons = FxHashMap::default();
        let mut shared = Vec::new();
        for name in ["MISSING", "KW_ONLY", "_HAS_DEFAULT_FACTORY"] {
            if let Ok(value) = dataclasses.getattr(name) {
                let ty = addr(&value.get_type().into_any());
                let entry = (
                    dataclasses.clone().into_any().unbind(),
                    PyString::new(py, name).unbind(),
                );
                if singletons.insert(ty, entry).is_some() {
                    shared.push(ty);
                }
            }
        }
        // 3.15 makes them instances of one builtin `sentinel` type (PEP 661), which pickles
        // each by its name already: a type shared by several cannot name one of them.
        for ty in shared {
            singletons.remove(&ty);
        }

        // cloudpickle's `_BUILTIN_TYPE_NAMES`: types in `types` that `builtins` does not name.
        let mut builtin_types = FxHashMap::default();
        for name in types.dir()?.iter() {
            let name = name.cast_into::<PyString>()?;
            let value = types.getattr(&name)?;
            if !crate::ffi::is_type(&value) || crate::ffi::is_heap_type(&value) {
                continue;
            }
            let type_name = value.getattr("__name__")?;
            let same = builtins
                .getattr(type_name.cast::<PyString>()?)
                .map(|b| b.is(&value))
                .unwrap_or(false);
            if !same {
                builtin_types.insert(addr(&value), name.unbind());
            }
        }

        let pickle_mod = py.import("_pickle")?;
        let ordered_dict = py.import("collections")?.getattr("OrderedDict")?;
        let mut refs = TypeRefs {
            exact_kinds: FxHashMap::default(),
            function: ta(&types, "FunctionType")?,
            code: ta(&types, "CodeType")?,
            cell: ta(&types, "CellType")?,
            method: ta(&types, "MethodType")?,
            classmethod: ta(&builtins, "classmethod")?,
            staticmethod: ta(&builtins, "staticmethod")?,
            property: ta(&builtins, "property")?,
            lru_cache: ta(&functools, "_lru_cache_wrapper")?,
            mappingproxy: ta(&types, "MappingProxyType")?,
            weak_set: ta(&weakref, "WeakSet")?,
            typevar: ta(&typing, "TypeVar")?,
            generator: ta(&types, "GeneratorType")?,
            coroutine: ta(&types, "CoroutineType")?,
            async_generator: ta(&types, "AsyncGeneratorType")?,
            itertools: {
                let it = py.import("itertools")?;
                [
                    ta(&it, "count")?,
                    ta(&it, "repeat")?,
                    ta(&it, "islice")?,
                    ta(&it, "chain")?,
                    ta(&it, "cycle")?,
                ]
            },
            coroutine_wrapper: coroutine_wrapper_type(py)?,
            // Deprecated since 3.3: 0 (matching no type) should a version drop them.
            abstract_classmethod: ta(&abc, "abstractclassmethod").unwrap_or(0),
            abstract_staticmethod: ta(&abc, "abstractstaticmethod").unwrap_or(0),
            abstract_property: ta(&abc, "abstractproperty").unwrap_or(0),
            dict_views: {
                let mut views = [0; 6];
                for (slot, view) in views.iter_mut().zip(dict_views(py)?) {
                    *slot = addr(&view.get_type().into_any());
                }
                views
            },
            files: {
                let io = py.import("_io")?;
                [
                    ta(&io, "TextIOWrapper")?,
                    ta(&io, "BufferedReader")?,
                    ta(&io, "BufferedRandom")?,
                    ta(&io, "BufferedWriter")?,
                    ta(&io, "FileIO")?,
                ]
            },
            builtin_function: ta(&types, "BuiltinFunctionType")?,
            descriptor_types: [
                "MethodDescriptorType",
                "WrapperDescriptorType",
                "GetSetDescriptorType",
                "MemberDescriptorType",
                "ClassMethodDescriptorType",
            ]
            .iter()
            .map(|n| ta(&types, n))
            .collect::<PyResult<_>>()?,
            atomic: [
                addr(&py.None().into_bound(py).get_type().into_any()),
                ta(&builtins, "bool")?,
                ta(&builtins, "int")?,
                ta(&builtins, "float")?,
                ta(&builtins, "complex")?,
                ta(&builtins, "str")?,
                ta(&builtins, "bytes")?,
            ],
            tuple: ta(&builtins, "tuple")?,
            singletons,
            builtin_types,
            enum_meta: attr(&enum_mod, "EnumMeta")?.unbind(),
            generic: attr(&typing, "Generic")?.unbind(),
            abc_meta: attr(&abc, "ABCMeta")?.unbind(),
            getattr: attr(&builtins, "getattr")?.unbind(),
            vars: attr(&builtins, "vars")?.unbind(),
            getitem: py.import("operator")?.getattr("getitem")?.unbind(),
            type_type: attr(&builtins, "type")?.unbind(),
            shared_getsets: shared_getsets(&builtins)?,
            import_module: py.import("importlib")?.getattr("import_module")?.unbind(),
            method_type: attr(&types, "MethodType")?.unbind(),
            mappingproxy_type: attr(&types, "MappingProxyType")?.unbind(),
            newtype_type: attr(&typing, "NewType")?.unbind(),
            gc_get_referents: py.import("gc")?.getattr("get_referents")?.unbind(),
            abc_get_dump: py.import("_abc")?.getattr("_get_dump")?.unbind(),
            copyreg_newobj: py.import("copyreg")?.getattr("__newobj__")?.unbind(),
            copyreg_slotnames: py.import("copyreg")?.getattr("_slotnames")?.unbind(),
            object_type: attr(&builtins, "object")?.unbind(),
            copyreg_dispatch: py
                .import("copyreg")?
                .getattr("dispatch_table")?
                .cast_into::<PyDict>()?
                .unbind(),
            sys_modules: py
                .import("sys")?
                .getattr("modules")?
                .cast_into::<PyDict>()?
                .unbind(),
            bytes_io: py.import("io")?.getattr("BytesIO")?.unbind(),
            string_io: py.import("io")?.getattr("StringIO")?.unbind(),
            bytes_type: attr(&builtins, "bytes")?.unbind(),
            bytearray_type: attr(&builtins, "bytearray")?.unbind(),
            dict_type: attr(&builtins, "dict")?.unbind(),
            ordered_dict: ordered_dict.clone().unbind(),
            dict_view_makers: {
                let dict = attr(&builtins, "dict")?;
                let mut makers = Vec::with_capacity(6);
                for owner in [&dict, &ordered_dict] {
                    for name in ["keys", "values", "items"] {
                        makers.push(owner.getattr(name)?.unbind());
                    }
                }
                makers
                    .try_into()
                    .expect("three view makers for each of dict and OrderedDict")
            },
            memoryview_type: attr(&builtins, "memoryview")?.unbind(),
            methodcaller: py.import("operator")?.getattr("methodcaller")?.unbind(),
            sys: py.import("sys")?.into_any().unbind(),
            c_dump: pickle_mod.getattr("Pickler")?.getattr("dump")?.unbind(),
            pickle_loads: crate::ffi::loads_for_c(pickle_mod.getattr("loads")?)?.unbind(),
            c_clear_memo: pickle_mod
                .getattr("Pickler")?
                .getattr("clear_memo")?
                .unbind(),
            op_load_global: op("LOAD_GLOBAL")?,
            load_global_shift: load_global_shift(py, op("LOAD_GLOBAL")?)?,
            op_store_global: op("STORE_GLOBAL")?,
            op_delete_global: op("DELETE_GLOBAL")?,
            op_extended_arg: op("EXTENDED_ARG")?,
            op_load_name: ["LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"]
                .iter()
                .filter_map(|n| op(n).ok())
                .collect(),
            lazy_annotations: py.version_info() >= (3, 14),
            override_before_memo: crate::reduce::override_before_memo(py)?,
            function_derives_qualname: function_derives_qualname(py)?,
            has_type_params: types.getattr("FunctionType")?.hasattr("__type_params__")?,
        };
        refs.exact_kinds = crate::reduce::exact_kinds(py, &refs)?;
        Ok(refs)
    }
}

/// A keys, values and items view of a dict, then of an OrderedDict (their types are not
/// exposed under names that every version shares).
fn dict_views(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyAny>>> {
    let plain = PyDict::new(py).into_any();
    let ordered = py.import("collections")?.getattr("OrderedDict")?.call0()?;
    let mut views = Vec::with_capacity(6);
    for d in [plain, ordered] {
        for name in ["keys", "values", "items"] {
            views.push(d.call_method0(name)?);
        }
    }
    Ok(views)
}

/// The `__dict__`/`__weakref__` descriptors of a throwaway class, if they are the ones every
/// class shares: CPython 3.15 made them one object each, owned by `object` (their
/// `__objclass__`) though `object` has neither attribute.
fn shared_getsets(builtins: &Bound<'_, PyModule>) -> PyResult<Vec<Py<PyAny>>> {
    let py = builtins.py();
    let object = attr(builtins, "object")?;
    let probe = attr(builtins, "type")?.call1(("probe", PyTuple::empty(py), PyDict::new(py)))?;
    let own = attr(builtins, "vars")?.call1((probe,))?;
    let mut shared = Vec::new();
    for name in ["__dict__", "__weakref__"] {
        let descriptor = own.get_item(name)?;
        if descriptor.getattr("__objclass__")?.is(&object) {
            shared.push(descriptor.unbind());
        }
    }
    Ok(shared)
}

/// LOAD_GLOBAL's oparg for the second global of a probe, against its index in `co_names` (1).
fn load_global_shift(py: Python<'_>, load_global: u8) -> PyResult<u8> {
    let globals = PyDict::new(py);
    py.run(
        c"code = (lambda: (_a, _b)).__code__.co_code\n",
        Some(&globals),
        None,
    )?;
    let code: Vec<u8> = globals
        .get_item("code")?
        .expect("set by the snippet")
        .extract()?;
    let args: Vec<u8> = code
        .chunks_exact(2)
        .filter(|pair| pair[0] == load_global)
        .map(|pair| pair[1])
        .collect();
    Ok(match args.as_slice() {
        [_, 1] => 0,
        _ => 1,
    })
}

fn function_derives_qualname(py: Python<'_>) -> PyResult<bool> {
    let globals = PyDict::new(py);
    py.run(
        c"import types\ndef _outer():\n    def _inner(): pass\n    return _inner\n\
          _c = _outer().__code__\nt = types.FunctionType(_c, {}).__qualname__ == _c.co_qualname\n",
        Some(&globals),
        None,
    )?;
    globals
        .get_item("t")?
        .expect("set by the snippet")
        .extract()
}

/// The type of `coro.__await__()` (not exposed by `types`): made from a throwaway coroutine.
fn coroutine_wrapper_type(py: Python<'_>) -> PyResult<usize> {
    let globals = pyo3::types::PyDict::new(py);
    py.run(
        c"async def _c(): pass\n_k = _c()\nt = type(_k.__await__())\n_k.close()\n",
        Some(&globals),
        None,
    )?;
    Ok(crate::ffi::addr(
        &globals.get_item("t")?.expect("set by the snippet"),
    ))
}
