//! Generators, coroutines and async generators (docs/FORMAT.md, "Generators").
//!
//! - Finished: `finished_generator(kind, name, qualname)`, in both modes.
//! - Nonportable, created or suspended: the frame itself. `generator_skeleton(func, code)`
//!   makes a created generator of the shipped code object (memoized before the state), and
//!   `generator_setstate(gen, state)` hands the state to `resume` below, which validates it
//!   against the skeleton's own code object and then writes the frame (`ffi::frame`).
//! - Portable, created: its function (as source) and arguments, `make_generator(f, a, kw)`.
//!   Started ones are refused: their frame is bytecode.
//! - Running: refused.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::{call, call_then_set, DumpState, Kind};
use crate::bootstrap::boot;
use crate::error::Error;
use crate::ffi::frame::{self, GenState, Layout, Slot, Snapshot};
use crate::ffi::stack;

/// CO_VARARGS and CO_VARKEYWORDS (Include/cpython/code.h).
const CO_VARARGS: u32 = 0x4;
const CO_VARKEYWORDS: u32 = 0x8;

/// The stream's number for each kind (`finished_generator`).
fn kind_number(kind: Kind) -> u8 {
    match kind {
        Kind::Coroutine => 1,
        Kind::AsyncGenerator => 2,
        _ => 0,
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Coroutine => "coroutine",
        Kind::AsyncGenerator => "async generator",
        _ => "generator",
    }
}

/// "generator 'mod.qualname'" for messages.
fn describe(obj: &Bound<'_, PyAny>, kind: Kind) -> String {
    let qualname = obj
        .getattr("__qualname__")
        .map(|q| q.to_string())
        .unwrap_or_else(|_| "?".into());
    format!("{} '{qualname}'", kind_name(kind))
}

pub fn reduce<'py>(
    state: &DumpState,
    obj: &Bound<'py, PyAny>,
    kind: Kind,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let what = || describe(obj, kind);
    // A generator's frame may hold generators (`yield from` chains, awaited coroutines), each
    // pickled by a nested call of the pickler: stop while the C stack still has room.
    if let Some(left) = stack::remaining().filter(|left| *left < stack::margin()) {
        return Err(Error::TooDeepForStack { what: what(), left }.into_pyerr(py));
    }
    let gen = frame::Gen::new(obj).expect("classified as a generator kind");
    let layout = usable(py);
    let st = match layout {
        Ok(layout) => frame::state(gen, layout),
        Err(_) => state_by_attributes(obj, kind)?,
    };
    match st {
        GenState::Running => Err(Error::GeneratorRunning { what: what() }.into_pyerr(py)),
        GenState::Finished => call(
            &boot(py).finished_generator,
            PyTuple::new(
                py,
                [
                    kind_number(kind).into_pyobject(py)?.into_any(),
                    obj.getattr("__name__")?,
                    obj.getattr("__qualname__")?,
                ],
            )?,
        ),
        // Not started: its function and arguments, in both modes (a stdlib-only receiver
        // loads it; nothing depends on the bytecode's offsets yet).
        GenState::Created => not_started(obj, kind),
        // Started. Without a usable frame layout (PyPy) neither mode can pickle it: say so,
        // in portable mode too, rather than advise mode='nonportable' (which refuses it).
        _ => match layout {
            Err(build) => Err(Error::GeneratorUnsupported {
                what: what(),
                build,
            }
            .into_pyerr(py)),
            Ok(layout) if state.portable() => Err(Error::GeneratorInPortable {
                what: what(),
                line: line_of(obj, kind),
                offset: take_snapshot(obj, layout)?
                    .map(|s| s.offset * 2)
                    .unwrap_or(0),
                label: crate::envelope::fingerprint::fingerprint(py)?.label.clone(),
            }
            .into_pyerr(py)),
            Ok(layout) => live(obj, kind, layout),
        },
    }
}

/// The generator's code object (its public `gi_code`/`cr_code`/`ag_code`).
fn code_of<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let refs = crate::typeref::typerefs(obj.py());
    let ty = crate::ffi::type_addr(obj);
    obj.getattr(if ty == refs.coroutine {
        "cr_code"
    } else if ty == refs.async_generator {
        "ag_code"
    } else {
        "gi_code"
    })
}

/// A snapshot of a generator's frame: everything that runs Python (its code, the code's
/// length) happens first; `frame::snapshot` then reads memory only.
fn take_snapshot<'py>(
    obj: &Bound<'py, PyAny>,
    layout: &Layout,
) -> PyResult<Result<Snapshot<'py>, String>> {
    let code = code_of(obj)?;
    let units = code_units(&code)?;
    let gen = frame::Gen::new(obj).expect("a generator kind");
    Ok(frame::snapshot(gen, layout, &code, units))
}

/// A suspended generator, by its frame.
fn live<'py>(obj: &Bound<'py, PyAny>, kind: Kind, layout: &Layout) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let frame_error = |reason: String| {
        Error::GeneratorFrame {
            what: describe(obj, kind),
            reason,
        }
        .into_pyerr(py)
    };
    let snap = take_snapshot(obj, layout)?.map_err(frame_error)?;
    let gen_state = frame::state(frame::Gen::new(obj).expect("a generator kind"), layout);
    let depth = snap.slots.len() - snap.nlocalsplus;
    check_offset(&snap.code, gen_state, snap.offset, depth)?.map_err(frame_error)?;
    if kind == Kind::Coroutine || kind == Kind::AsyncGenerator {
        if let Some(awaited) = awaits_future(&snap)? {
            return Err(Error::GeneratorAwaitsFuture {
                what: describe(obj, kind),
                awaited,
            }
            .into_pyerr(py));
        }
    }
    let b = boot(py);
    let mut tagged = Vec::new();
    let mut nulls = Vec::new();
    let mut slots = Vec::with_capacity(snap.slots.len());
    for (i, s) in snap.slots.iter().enumerate() {
        slots.push(match s {
            Slot::Null => {
                nulls.push(i);
                py.None().into_bound(py)
            }
            Slot::Object(o) => o.clone(),
            Slot::TaggedInt(v) => {
                tagged.push(i);
                v.into_pyobject(py)?.into_any()
            }
        });
    }
    let exc = snap.exc.clone().unwrap_or_else(|| py.None().into_bound(py));
    let state = PyTuple::new(
        py,
        [
            layout.tag().into_pyobject(py)?.into_any(),
            gen_state.wire().into_pyobject(py)?.into_any(),
            snap.offset.into_pyobject(py)?.into_any(),
            snap.nlocalsplus.into_pyobject(py)?.into_any(),
            PyTuple::new(py, slots)?.into_any(),
            PyTuple::new(py, tagged)?.into_any(),
            PyTuple::new(py, nulls)?.into_any(),
            exc,
            obj.getattr("__name__")?,
            obj.getattr("__qualname__")?,
        ],
    )?;
    call_then_set(
        &b.generator_skeleton,
        PyTuple::new(py, [snap.func.clone(), snap.code.clone()])?,
        state.into_any(),
        &b.generator_setstate,
    )
}

/// The awaited object, if a coroutine's value stack holds an asyncio Future or Task (or the
/// iterator of one): only its event loop can complete those.
fn awaits_future(snap: &Snapshot<'_>) -> PyResult<Option<String>> {
    let py = snap.code.py();
    let modules = py.import("sys")?.getattr("modules")?;
    let future = modules
        .get_item("asyncio")
        .ok()
        .and_then(|m| m.getattr("Future").ok());
    for slot in &snap.slots[snap.nlocalsplus..] {
        if let Slot::Object(o) = slot {
            let ty = o.get_type();
            let name = ty.qualname()?.to_string();
            let module = ty.module()?.to_string();
            let is_future = match &future {
                Some(f) => o.is_instance(f)?,
                None => false,
            };
            if is_future || (module == "_asyncio" && name == "FutureIter") {
                return Ok(Some(format!("{module}.{name}")));
            }
        }
    }
    Ok(None)
}

/// `len(code.co_code) // 2`: the code's length in code units.
fn code_units(code: &Bound<'_, PyAny>) -> PyResult<usize> {
    // Before anything reads co_code: reading a malformed one overruns memory (code.rs).
    super::code::check_bytecode(code)?;
    Ok(code
        .getattr("co_code")?
        .cast_into::<PyBytes>()?
        .as_bytes()
        .len()
        / 2)
}

/// The opcodes a resumable frame may stop at, from this interpreter's `opcode.opmap`.
struct Opcodes {
    return_generator: u8,
    yield_value: Vec<u8>,
    resume: Vec<u8>,
}

static OPCODES: PyOnceLock<Opcodes> = PyOnceLock::new();

fn opcodes(py: Python<'_>) -> PyResult<&'static Opcodes> {
    OPCODES.get_or_try_init(py, || {
        let opmap = py.import("opcode")?.getattr("opmap")?;
        let get = |name: &str| -> Option<u8> { opmap.get_item(name).ok()?.extract().ok() };
        let need = |name: &str| {
            get(name).ok_or_else(|| {
                pyo3::exceptions::PyRuntimeError::new_err(format!("opcode {name} is unknown"))
            })
        };
        Ok(Opcodes {
            return_generator: need("RETURN_GENERATOR")?,
            yield_value: [Some(need("YIELD_VALUE")?), get("INSTRUMENTED_YIELD_VALUE")]
                .into_iter()
                .flatten()
                .collect(),
            resume: [Some(need("RESUME")?), get("INSTRUMENTED_RESUME")]
                .into_iter()
                .flatten()
                .collect(),
        })
    })
}

/// Whether `offset` is where a frame in `state` can stop in `code`, with `depth` values on its
/// stack: RETURN_GENERATOR (created, empty stack) or YIELD_VALUE directly followed by RESUME
/// with exactly the stack depth the bytecode has there (suspended; after `yield from`/`await`
/// the delegate is on the stack). Checked with the code's deoptimised bytes (`co_code`), which
/// keep the live code's offsets. `Ok(Err(reason))` when it is not; `Err` when Python failed
/// (a KeyboardInterrupt or MemoryError passes through).
fn check_offset(
    code: &Bound<'_, PyAny>,
    state: GenState,
    offset: usize,
    depth: usize,
) -> PyResult<Result<(), String>> {
    let py = code.py();
    let ops = opcodes(py)?;
    // Before reading co_code: reading a malformed one overruns memory (code.rs). On loading
    // that is a reason like any other (the caller words the error for its side).
    if let Err(e) = super::code::check_bytecode(code) {
        let ty = crate::error::pickling_error_type(py)?.bind(py);
        if e.is_instance(py, ty) {
            return Ok(Err("its code object's bytecode is malformed".into()));
        }
        return Err(e);
    }
    let bytes = code.getattr("co_code")?.cast_into::<PyBytes>()?;
    let bytes = bytes.as_bytes();
    let unit = |i: usize| -> Option<(u8, u8)> {
        let at = i.checked_mul(2)?;
        Some((*bytes.get(at)?, *bytes.get(at.checked_add(1)?)?))
    };
    let Some((op, _)) = unit(offset) else {
        return Ok(Err(format!("offset {offset} is past the end of the code")));
    };
    match state {
        GenState::Created => {
            if op != ops.return_generator || depth != 0 {
                return Ok(Err(format!(
                    "a generator that has not started must wait at RETURN_GENERATOR with an \
                     empty stack (offset {offset}: opcode {op}, depth {depth})"
                )));
            }
        }
        GenState::Suspended | GenState::SuspendedYieldFrom => {
            let resume = unit(offset + 1);
            let ok = ops.yield_value.contains(&op)
                && resume.is_some_and(|(next, arg)| {
                    ops.resume.contains(&next) && (1..=3).contains(&(arg & 3))
                });
            if !ok {
                return Ok(Err(format!(
                    "offset {offset} is not a YIELD_VALUE followed by RESUME (opcode {op})"
                )));
            }
            let delegating = resume.is_some_and(|(_, arg)| arg & 3 >= 2);
            if (delegating || state == GenState::SuspendedYieldFrom) && depth == 0 {
                return Ok(Err(
                    "a generator suspended in 'yield from' or 'await' must \
                               have its delegate on the stack"
                        .into(),
                ));
            }
            match yield_depth(code, offset)? {
                Some(expected) if expected == depth => {}
                Some(expected) => {
                    return Ok(Err(format!(
                        "its value stack holds {depth} values where the code has {expected} \
                         at offset {offset}"
                    )))
                }
                None => {
                    return Ok(Err(format!(
                        "the stack depth at offset {offset} cannot be derived from the code"
                    )))
                }
            }
        }
        GenState::Running | GenState::Finished => {
            return Ok(Err(
                "only a created or suspended frame can be resumed".into()
            ))
        }
    }
    Ok(Ok(()))
}

/// The value-stack depth of a frame suspended at the YIELD_VALUE at `offset` (code units),
/// derived from the bytecode by `satchel._frames` (cached per code object).
fn yield_depth(code: &Bound<'_, PyAny>, offset: usize) -> PyResult<Option<usize>> {
    static YIELD_DEPTHS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = code.py();
    let f = YIELD_DEPTHS.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("satchel._frames")?
                .getattr("yield_depths")?
                .unbind(),
        )
    })?;
    let depths = f.bind(py).call1((code,))?;
    if depths.is_none() {
        return Ok(None);
    }
    match depths.get_item(offset * 2) {
        Ok(d) => Ok(Some(d.extract()?)),
        Err(_) => Ok(None),
    }
}

/// The state from the public attributes, where no frame layout is known (never used to
/// write anything).
fn state_by_attributes(obj: &Bound<'_, PyAny>, kind: Kind) -> PyResult<GenState> {
    let prefix = match kind {
        Kind::Coroutine => "cr",
        Kind::AsyncGenerator => "ag",
        _ => "gi",
    };
    if obj.getattr(format!("{prefix}_frame").as_str())?.is_none() {
        return Ok(GenState::Finished);
    }
    if obj
        .getattr(format!("{prefix}_running").as_str())?
        .is_truthy()?
    {
        return Ok(GenState::Running);
    }
    let inspect = obj.py().import("inspect")?;
    let state = match kind {
        Kind::Coroutine => inspect.call_method1("getcoroutinestate", (obj,))?,
        Kind::AsyncGenerator => match inspect.getattr("getasyncgenstate") {
            Ok(f) => f.call1((obj,))?,
            Err(_) => return Ok(GenState::Suspended),
        },
        _ => inspect.call_method1("getgeneratorstate", (obj,))?,
    };
    Ok(if state.to_string().ends_with("CREATED") {
        GenState::Created
    } else {
        GenState::Suspended
    })
}

fn line_of(obj: &Bound<'_, PyAny>, kind: Kind) -> String {
    frame_attr(obj, kind)
        .and_then(|f| f.getattr("f_lineno"))
        .map(|l| l.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn frame_attr<'py>(obj: &Bound<'py, PyAny>, kind: Kind) -> PyResult<Bound<'py, PyAny>> {
    obj.getattr(match kind {
        Kind::Coroutine => "cr_frame",
        Kind::AsyncGenerator => "ag_frame",
        _ => "gi_frame",
    })
}

/// Portable mode, not started: its function and the arguments it was called with.
fn not_started<'py>(obj: &Bound<'py, PyAny>, kind: Kind) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let frame = frame_attr(obj, kind)?;
    let code = frame.getattr("f_code")?;
    // A dict copy: 3.13+ give a write-through FrameLocalsProxy (PEP 667).
    let locals = py
        .get_type::<PyDict>()
        .call1((frame.getattr("f_locals")?,))?
        .cast_into::<PyDict>()?;
    let func = function_of(obj, &code, &frame, &locals)?;
    let (args, kwargs) = arguments(&code, &locals)?;
    call(
        &boot(py).make_generator,
        PyTuple::new(py, [func, args.into_any(), kwargs.into_any()])?,
    )
}

/// The generator's function: the frame's own where the layout is known (it keeps closure
/// cells shared with other functions), else one rebuilt from the code, the frame's globals
/// and its free variables' values.
fn function_of<'py>(
    obj: &Bound<'py, PyAny>,
    code: &Bound<'py, PyAny>,
    frame: &Bound<'py, PyAny>,
    locals: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    if let Ok(layout) = usable(py) {
        if let Ok(Ok(snap)) = take_snapshot(obj, layout) {
            if snap.func.getattr("__code__").is_ok_and(|c| c.is(code)) {
                return Ok(snap.func);
            }
        }
    }
    let cells = PyList::empty(py);
    let cell_type = py.import("types")?.getattr("CellType")?;
    for name in code.getattr("co_freevars")?.cast_into::<PyTuple>()?.iter() {
        let cell = match locals.get_item(&name)? {
            Some(value) => cell_type.call1((value,))?,
            None => cell_type.call0()?,
        };
        cells.append(cell)?;
    }
    let closure = if cells.is_empty() {
        py.None().into_bound(py)
    } else {
        cells.to_tuple().into_any()
    };
    let function_type = py.import("types")?.getattr("FunctionType")?;
    let globals = frame.getattr("f_globals")?;
    let func =
        function_type.call1((code, globals, obj.getattr("__name__")?, py.None(), closure))?;
    func.setattr("__qualname__", obj.getattr("__qualname__")?)?;
    Ok(func)
}

/// The call's arguments, from a frame that has not started: positional (and *args) in order,
/// keyword-only and **kwargs by name.
fn arguments<'py>(
    code: &Bound<'py, PyAny>,
    locals: &Bound<'py, PyDict>,
) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
    let py = code.py();
    let names = code.getattr("co_varnames")?.cast_into::<PyTuple>()?;
    let argcount: usize = code.getattr("co_argcount")?.extract()?;
    let kwonly: usize = code.getattr("co_kwonlyargcount")?.extract()?;
    let flags: u32 = code.getattr("co_flags")?.extract()?;
    let value = |i: usize| -> PyResult<Bound<'py, PyAny>> {
        let name = names.get_item(i)?;
        locals.get_item(&name)?.ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!("argument {name} is not bound"))
        })
    };
    let mut args = Vec::new();
    for i in 0..argcount {
        args.push(value(i)?);
    }
    let kwargs = PyDict::new(py);
    let mut next = argcount + kwonly;
    if flags & CO_VARARGS != 0 {
        args.extend(value(next)?.cast_into::<PyTuple>()?.iter());
        next += 1;
    }
    for i in argcount..argcount + kwonly {
        kwargs.set_item(names.get_item(i)?, value(i)?)?;
    }
    if flags & CO_VARKEYWORDS != 0 {
        kwargs.update(value(next)?.cast_into::<PyDict>()?.as_mapping())?;
    }
    Ok((PyTuple::new(py, args)?, kwargs))
}

/// The parts of a suspended generator's frame that pickling visits, labelled for an error
/// path: "local 'lock' of generator 'g' (line 12)", "value stack[0] ...", "saved exception".
pub fn parts<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
    let py = obj.py();
    let mut out = Vec::new();
    let Ok(layout) = usable(py) else {
        return Ok(out);
    };
    let Ok(snap) = take_snapshot(obj, layout)? else {
        return Ok(out);
    };
    let kind = match crate::ffi::type_addr(obj) {
        t if t == crate::typeref::typerefs(py).coroutine => Kind::Coroutine,
        t if t == crate::typeref::typerefs(py).async_generator => Kind::AsyncGenerator,
        _ => Kind::Generator,
    };
    let whose = format!("{} (line {})", describe(obj, kind), line_of(obj, kind));
    let cell_type = crate::typeref::typerefs(py).cell;
    for (i, slot) in snap.slots.iter().enumerate() {
        let Slot::Object(value) = slot else { continue };
        let label = if i < snap.nlocalsplus {
            let name = snap
                .code
                .call_method1("_varname_from_oparg", (i,))
                .map(|n| n.to_string())
                .unwrap_or_else(|_| format!("#{i}"));
            if crate::ffi::type_addr(value) == cell_type {
                format!("variable '{name}' (a cell) of {whose}")
            } else {
                format!("local '{name}' of {whose}")
            }
        } else {
            let is_exit = value
                .getattr("__name__")
                .is_ok_and(|n| n.to_string() == "__exit__" || n.to_string() == "__aexit__");
            let note = if is_exit {
                ", a with-statement's exit"
            } else {
                ""
            };
            format!("value stack[{}]{note} of {whose}", i - snap.nlocalsplus)
        };
        out.push((label, value.clone()));
    }
    if let Some(exc) = snap.exc {
        out.push((format!("saved exception of {whose}"), exc));
    }
    out.push((format!("function of {whose}"), snap.func));
    Ok(out)
}

/// `coro.__await__()` (a coroutine_wrapper): the restored coroutine's own.
pub fn reduce_coroutine_wrapper<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    // The wrapper's only field is its coroutine; gc.get_referents is the public way to it.
    let referents = py.import("gc")?.getattr("get_referents")?.call1((obj,))?;
    let coroutine = crate::typeref::typerefs(py).coroutine;
    for r in referents.try_iter()? {
        let r = r?;
        if crate::ffi::type_addr(&r) == coroutine {
            return call(&boot(py).await_of, PyTuple::new(py, [r])?);
        }
    }
    Ok(super::not_implemented(py))
}

// ------------------------------------------------------------------------------------------
// Loading: the state setter (bootstrap `generator_setstate` calls this).
// ------------------------------------------------------------------------------------------

fn load_error(py: Python<'_>, reason: impl Into<String>) -> PyErr {
    Error::GeneratorLoad {
        reason: reason.into(),
    }
    .into_pyerr(py)
}

/// Validates a generator's frame state against the skeleton's own code object, then writes
/// it. Every check that runs Python code happens before `frame::restore`, which checks the
/// skeleton again and writes with nothing running in between; the names are set after.
#[pyfunction]
pub fn _resume_generator(gen: &Bound<'_, PyAny>, state: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = gen.py();
    let state = state
        .cast::<PyTuple>()
        .map_err(|_| load_error(py, "malformed frame state (not a tuple)"))?;
    let layout = usable(py)
        .map_err(|build| load_error(py, format!("live generators are not supported on {build}")))?;
    let skeleton =
        frame::Gen::new(gen).ok_or_else(|| load_error(py, "the skeleton is not a generator"))?;
    let bad = |what: &str| load_error(py, format!("malformed frame state ({what})"));
    if state.len() != 10 {
        return Err(bad("length"));
    }
    let tag: String = state.get_item(0)?.extract().map_err(|_| bad("layout"))?;
    if tag != layout.tag() {
        return Err(load_error(
            py,
            format!(
                "it was captured on {tag}, this interpreter is {}: a suspended generator \
                 needs identical bytecode",
                layout.tag()
            ),
        ));
    }
    let st: u8 = state.get_item(1)?.extract().map_err(|_| bad("state"))?;
    // A not-started generator never travels as a frame (it is its function and arguments).
    let st = GenState::from_wire(st)
        .filter(|s| *s != GenState::Created)
        .ok_or_else(|| bad("state"))?;
    let offset: usize = state.get_item(2)?.extract().map_err(|_| bad("offset"))?;
    let nlp: usize = state
        .get_item(3)?
        .extract()
        .map_err(|_| bad("nlocalsplus"))?;
    let slots = state
        .get_item(4)?
        .cast_into::<PyTuple>()
        .map_err(|_| bad("slots"))?;
    let tagged: Vec<usize> = state.get_item(5)?.extract().map_err(|_| bad("tagged"))?;
    let nulls: Vec<usize> = state.get_item(6)?.extract().map_err(|_| bad("nulls"))?;
    let exc = state.get_item(7)?;
    let (name, qualname) = (state.get_item(8)?, state.get_item(9)?);
    let (code, code_nlp, stacksize) =
        frame::skeleton_code(skeleton, layout).map_err(|r| load_error(py, r))?;
    if nlp != code_nlp {
        return Err(load_error(
            py,
            format!("it has {nlp} local slots, its code object has {code_nlp}"),
        ));
    }
    let n = slots.len();
    if n < nlp || n - nlp > stacksize {
        return Err(load_error(
            py,
            format!(
                "its value stack depth {} is outside 0..={stacksize} for its code object",
                n as isize - nlp as isize
            ),
        ));
    }
    check_offset(&code, st, offset, n - nlp)?.map_err(|r| load_error(py, r))?;
    // 3.13+ tell a frame in `yield from`/`await` apart (FRAME_SUSPENDED + YIELD_VALUE's oparg),
    // and read the delegate off the stack by that state alone: it must be the code's.
    if layout.state_suspended_yield_from != layout.state_suspended {
        let yield_arg = code
            .getattr("co_code")?
            .cast_into::<PyBytes>()?
            .as_bytes()
            .get(offset * 2 + 1)
            .copied();
        let expected = if yield_arg.is_some_and(|a| a & 1 == 1) {
            GenState::SuspendedYieldFrom
        } else {
            GenState::Suspended
        };
        if st != expected {
            return Err(load_error(
                py,
                format!(
                    "its state says {} where its code waits {} at offset {offset}",
                    if st == GenState::SuspendedYieldFrom {
                        "'in yield from'"
                    } else {
                        "'at a yield'"
                    },
                    if expected == GenState::SuspendedYieldFrom {
                        "in yield from or await"
                    } else {
                        "at a plain yield"
                    },
                ),
            ));
        }
    }
    let units = code_units(&code)?;
    // Cell and free variables always hold cells once the prologue ran; a tagged int is only
    // ever a value-stack entry (a handler's saved lasti).
    let cell_names = code
        .getattr("co_cellvars")?
        .add(code.getattr("co_freevars")?)?;
    let cell_type = crate::typeref::typerefs(py).cell;
    let mut values = Vec::with_capacity(n);
    for (i, v) in slots.iter().enumerate() {
        let is_cell_slot =
            i < nlp && cell_names.contains(code.call_method1("_varname_from_oparg", (i,))?)?;
        let slot = if nulls.contains(&i) {
            Slot::Null
        } else if tagged.contains(&i) {
            if layout.minor < 14 || i < nlp {
                return Err(bad("a tagged int outside a 3.14 value stack"));
            }
            let v: isize = v.extract().map_err(|_| bad("tagged int"))?;
            if v.unsigned_abs() >= 1 << 60 {
                return Err(bad("tagged int range"));
            }
            Slot::TaggedInt(v)
        } else {
            Slot::Object(v)
        };
        let holds_cell = matches!(&slot, Slot::Object(o) if crate::ffi::type_addr(o) == cell_type);
        if is_cell_slot && !holds_cell {
            return Err(bad("a cell variable's slot does not hold a cell"));
        }
        values.push(slot);
    }
    let exc = if exc.is_none() {
        None
    } else if exc.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        Some(exc)
    } else {
        return Err(bad("the saved exception is not an exception"));
    };
    let what = {
        let refs = crate::typeref::typerefs(py);
        let kind = match crate::ffi::type_addr(gen) {
            t if t == refs.coroutine => Kind::Coroutine,
            t if t == refs.async_generator => Kind::AsyncGenerator,
            _ => Kind::Generator,
        };
        let qualname = qualname.extract::<String>().unwrap_or_else(|_| "?".into());
        format!("{} '{qualname}'", kind_name(kind))
    };
    check_contents(&code, layout, offset, nlp, units, &mut values, &what)?;
    frame::restore(
        skeleton,
        layout,
        &code,
        units,
        frame::Restore {
            state: st,
            offset,
            slots: &values,
            exc: exc.as_ref(),
        },
    )
    .map_err(|r| load_error(py, r))?;
    drop(values);
    gen.setattr("__name__", name)?;
    gen.setattr("__qualname__", qualname)?;
    Ok(())
}

/// Checks every value-stack slot and fast local against what the bytecode can leave there
/// (`satchel._frames.frame_model`: what the instructions that push each slot can put in it,
/// and what every instruction that can consume it needs). Computing the model runs Python (the
/// analysis of the code, cached); the checks only read the values' types.
fn check_contents<'py>(
    code: &Bound<'py, PyAny>,
    layout: &Layout,
    offset: usize,
    nlp: usize,
    units: usize,
    values: &mut [Slot<'py>],
    what: &str,
) -> PyResult<()> {
    static FRAME_MODEL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = code.py();
    let f = FRAME_MODEL.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("satchel._frames")?
                .getattr("frame_model")?
                .unbind(),
        )
    })?;
    let model = f.bind(py).call1((code, offset))?;
    let bad_model = || {
        load_error(
            py,
            format!("what its frame may hold at offset {offset} cannot be derived from its code"),
        )
    };
    if model.is_none() {
        return Err(bad_model());
    }
    let (stack, locals): (Bound<'_, PyTuple>, Bound<'_, PyTuple>) =
        model.extract().map_err(|_| bad_model())?;
    if stack.len() != values.len() - nlp {
        return Err(bad_model());
    }
    // except*'s list of raised exceptions is the frame's own: a copy, made before the checks,
    // so that nothing else in the stream can change its items once they are checked.
    for (i, entry) in stack.iter().enumerate() {
        let (_, reqs, _, _): (String, Vec<String>, isize, Bound<'_, PyAny>) =
            entry.extract().map_err(|_| bad_model())?;
        if let (true, Slot::Object(o)) = (reqs.iter().any(|r| r == "exclist"), &values[nlp + i]) {
            if o.is_exact_instance_of::<PyList>() {
                let copy = PyList::new(py, o.cast::<PyList>()?.iter())?.into_any();
                values[nlp + i] = Slot::Object(copy);
            }
        }
    }
    let fail = |slot: String, expected: String, value: &Slot<'_>| {
        Error::GeneratorContents {
            what: what.to_string(),
            slot,
            expected,
            found: found(value),
        }
        .into_pyerr(py)
    };
    for (i, entry) in stack.iter().enumerate() {
        let (atoms, reqs, partner, why): (String, Vec<String>, isize, Bound<'_, PyDict>) =
            entry.extract().map_err(|_| bad_model())?;
        let value = &values[nlp + i];
        let partner = usize::try_from(partner)
            .ok()
            .and_then(|p| values.get(nlp + p));
        if let Err((req, expected)) = check_slot(layout, value, &atoms, &reqs, partner, units) {
            return Err(fail(
                format!("value stack[{i}]"),
                format!("{expected}{}", because(&why, req)),
                value,
            ));
        }
    }
    for entry in locals.iter() {
        let (j, reqs, why): (usize, Vec<String>, Bound<'_, PyDict>) =
            entry.extract().map_err(|_| bad_model())?;
        let Some(value) = values.get(j).filter(|_| j < nlp) else {
            return Err(bad_model());
        };
        if let Err((req, expected)) = check_slot(layout, value, "on", &reqs, None, units) {
            let name = code
                .call_method1("_varname_from_oparg", (j,))
                .map(|n| n.to_string())
                .unwrap_or_else(|_| format!("#{j}"));
            return Err(fail(
                format!("local '{name}'"),
                format!("{expected}{}", because(&why, req)),
                value,
            ));
        }
    }
    Ok(())
}

/// " (FOR_ITER at line 5, offset 24 needs it)": the first instruction that needs `req`.
fn because(why: &Bound<'_, PyDict>, req: &str) -> String {
    why.get_item(req)
        .ok()
        .flatten()
        .map(|w| format!(" ({w} needs it)"))
        .unwrap_or_default()
}

/// What a slot holds, for a message: "NULL", "a tagged int 7", "a 'list' object".
fn found(value: &Slot<'_>) -> String {
    match value {
        Slot::Null => "NULL (nothing)".into(),
        Slot::TaggedInt(i) => format!("a tagged int {i}"),
        Slot::Object(o) if o.is_exact_instance_of::<pyo3::types::PyInt>() => {
            format!("the int {}", o.extract::<i128>().unwrap_or_default())
        }
        Slot::Object(o) => {
            let name = o
                .get_type()
                .qualname()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into());
            format!("a '{name}' object")
        }
    }
}

/// Whether one slot satisfies its model: `atoms` says what the bytecode can have pushed there
/// (o an object, n NULL, t a tagged int, l a handler's saved lasti), `reqs` what the
/// instructions that can consume it need. `partner` is the index slot of a 3.15 iterator.
/// On failure: the requirement that failed ("" for `atoms`) and what was expected.
fn check_slot<'r>(
    layout: &Layout,
    value: &Slot<'_>,
    atoms: &str,
    reqs: &'r [String],
    partner: Option<&Slot<'_>>,
    units: usize,
) -> Result<(), (&'r str, String)> {
    let tagged_lasti = layout.minor >= 14;
    let lasti_ok = |i: isize| i >= 0 && (i as usize) < units;
    let produced = match value {
        Slot::Null => atoms.contains('n'),
        Slot::TaggedInt(i) => {
            atoms.contains('t') && *i >= 0 || atoms.contains('l') && tagged_lasti && lasti_ok(*i)
        }
        Slot::Object(o) => {
            atoms.contains('o')
                || atoms.contains('l')
                    && !tagged_lasti
                    && o.is_exact_instance_of::<pyo3::types::PyInt>()
                    && o.extract::<isize>().is_ok_and(lasti_ok)
        }
    };
    if !produced {
        let mut kinds = Vec::new();
        if atoms.contains('o') {
            kinds.push("an object".to_string());
        }
        if atoms.contains('n') {
            kinds.push("NULL".to_string());
        }
        if atoms.contains('t') {
            kinds.push("a tagged int >= 0".to_string());
        }
        if atoms.contains('l') {
            let repr = if tagged_lasti {
                "a tagged int"
            } else {
                "an int"
            };
            kinds.push(format!("a saved offset in its code ({repr} in 0..{units})"));
        }
        let kinds = kinds.join(" or ");
        return Err(("", format!("{kinds}, what its bytecode pushes there")));
    }
    for req in reqs {
        let req = req.as_str();
        let ok = match (req, value) {
            ("nn", v) => !matches!(v, Slot::Null),
            ("obj", v) => !matches!(v, Slot::TaggedInt(_)),
            ("vindex", v) => match v {
                Slot::Null => true,
                Slot::TaggedInt(i) => *i >= 0,
                Slot::Object(_) => false,
            },
            (_, Slot::Object(o)) => object_meets(req, o, partner, layout),
            // NULL or a tagged int: the "nn" and "obj" codes decide
            _ => true,
        };
        if !ok {
            return Err((req, expectation(req, partner).to_string()));
        }
    }
    Ok(())
}

/// Whether an object meets a type requirement of `satchel._frames` (reads types only).
fn object_meets(
    req: &str,
    o: &Bound<'_, PyAny>,
    partner: Option<&Slot<'_>>,
    layout: &Layout,
) -> bool {
    let sequence = || frame::iterates_by_index(o, layout);
    match req {
        "iter" => frame::is_iterator(o),
        "list" => o.is_exact_instance_of::<PyList>(),
        "tuple" => o.is_exact_instance_of::<PyTuple>(),
        "dict" => o.is_exact_instance_of::<PyDict>(),
        "set" => o.is_exact_instance_of::<pyo3::types::PySet>(),
        "str" => o.is_exact_instance_of::<pyo3::types::PyString>(),
        "code" => crate::ffi::type_addr(o) == crate::typeref::typerefs(o.py()).code,
        "func" => crate::ffi::type_addr(o) == crate::typeref::typerefs(o.py()).function,
        "exc" => crate::ffi::is_exception(o),
        "excnone" => o.is_none() || crate::ffi::is_exception(o),
        "exclist" => {
            o.is_exact_instance_of::<PyList>()
                && o.cast::<PyList>().is_ok_and(|l| {
                    l.iter()
                        .all(|e| e.is_none() || crate::ffi::is_exception(&e))
                })
        }
        // 3.15: a virtual iterator is an object whose type iterates by index with a tagged
        // index, or an iterator with a NULL one (a `yield from`/`await` delegate with a NULL
        // index may be any object).
        "viter" | "vsend" => match partner {
            Some(Slot::TaggedInt(_)) => sequence(),
            Some(Slot::Null) => req == "vsend" || frame::is_iterator(o),
            _ => frame::is_iterator(o) || sequence(),
        },
        _ => true,
    }
}

fn expectation(req: &str, partner: Option<&Slot<'_>>) -> &'static str {
    match req {
        "nn" => "set (not NULL)",
        "obj" => "an object (not a tagged int)",
        "iter" => "an iterator",
        "list" => "exactly a list",
        "tuple" => "exactly a tuple",
        "dict" => "exactly a dict",
        "set" => "exactly a set",
        "str" => "exactly a str",
        "code" => "a code object",
        "func" => "a function",
        "exc" => "an exception",
        "excnone" => "an exception or None",
        "exclist" => "a list of exceptions and None",
        "vindex" => "NULL or a tagged int >= 0 (an iteration index)",
        "viter" | "vsend" => match partner {
            Some(Slot::TaggedInt(_)) => {
                "a list, tuple, str or bytes (its index is a tagged int: the type must iterate by \
                 index)"
            }
            _ => "an iterator (its index is NULL)",
        },
        _ => "something else",
    }
}

// ------------------------------------------------------------------------------------------
// The self-test: the generated offsets must describe this interpreter before satchel trusts
// them, checked on a probe generator when the module is imported.
// ------------------------------------------------------------------------------------------

static SELF_TEST: PyOnceLock<Result<(), String>> = PyOnceLock::new();

/// This interpreter's layout, if it is known and passed the self-test.
pub fn usable(py: Python<'_>) -> Result<&'static Layout, String> {
    let layout = frame::active(py)?;
    SELF_TEST
        .get_or_init(py, || {
            self_test(py, layout)
                .map_err(|e| format!("{} (frame layout self-test: {e})", layout.tag()))
        })
        .clone()?;
    Ok(layout)
}

const PROBE: &std::ffi::CStr = c"
def probe(a, b):
    c = a
    yield c
    yield b
    def inner():
        return a
";

fn self_test(py: Python<'_>, layout: &Layout) -> Result<(), String> {
    let e = |e: PyErr| e.to_string();
    let ns = PyDict::new(py);
    py.run(PROBE, Some(&ns), None).map_err(e)?;
    let probe = ns.get_item("probe").map_err(e)?.ok_or("no probe")?;
    let obj = probe.call1(("A", "B")).map_err(e)?;
    let gen = frame::Gen::new(&obj).ok_or("the probe is not a generator")?;
    let code = probe.getattr("__code__").map_err(e)?;
    let units = code_units(&code).map_err(e)?;
    let expect = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
    expect(
        frame::state(gen, layout) == GenState::Created,
        "created state",
    )?;
    // The code pointer is compared by address before anything is dereferenced.
    if layout.type_iteritem != 0 {
        let by_index = |o: Bound<'_, PyAny>| frame::iterates_by_index(&o, layout);
        expect(
            by_index(PyList::empty(py).into_any())
                && by_index(PyTuple::empty(py).into_any())
                && !by_index(PyDict::new(py).into_any())
                && !by_index(py.None().into_bound(py)),
            "_tp_iteritem of list, tuple, dict and None",
        )?;
    }
    let snap = frame::snapshot(gen, layout, &code, units)?;
    expect(snap.func.is(&probe), "function pointer")?;
    // a is a cell (inner reads it), so it shares its slot: 4 slots, not co_nlocals + 1 = 5.
    expect(
        snap.nlocalsplus == 4 && snap.slots.len() == 4,
        "co_nlocalsplus and stack top",
    )?;
    let cell_holds_a = match &snap.slots[0] {
        Slot::Object(cell) => crate::ffi::cell_contents(cell)
            .is_some_and(|v| v.extract::<String>().is_ok_and(|s| s == "A")),
        _ => false,
    };
    expect(cell_holds_a, "slot 0 is the cell of a")?;
    expect(matches!(snap.slots[2], Slot::Null), "slot 2 (c) is unbound")?;
    expect(snap.exc.is_none(), "no saved exception")?;
    check_offset(&code, GenState::Created, snap.offset, 0).map_err(e)??;
    obj.call_method0("__next__").map_err(e)?;
    expect(
        frame::state(gen, layout) == GenState::Suspended,
        "suspended state",
    )?;
    let snap = frame::snapshot(gen, layout, &code, units)?;
    let depth = snap.slots.len() - 4;
    check_offset(&code, GenState::Suspended, snap.offset, depth).map_err(e)??;
    // Restore the suspended frame into a fresh skeleton and resume it: it must yield b.
    let skeleton_obj = probe.call1((py.None(), py.None())).map_err(e)?;
    let skeleton = frame::Gen::new(&skeleton_obj).ok_or("the skeleton is not a generator")?;
    frame::restore(
        skeleton,
        layout,
        &code,
        units,
        frame::Restore {
            state: GenState::Suspended,
            offset: snap.offset,
            slots: &snap.slots,
            exc: None,
        },
    )?;
    let next = skeleton_obj.call_method0("__next__").map_err(e)?;
    expect(
        next.extract::<String>().is_ok_and(|s| s == "B"),
        "the restored probe yields b",
    )
}
