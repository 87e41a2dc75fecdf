//! Live generator frames: the only code that reads or writes CPython's `PyGenObject` and the
//! `_PyInterpreterFrame` embedded in it (3.11-3.15; coroutines and async generators share the
//! layout). Offsets come from `layouts.rs`, generated from each interpreter's internal headers;
//! `active()` refuses builds without a known layout, cross-checks 3.13+ against the
//! interpreter's own `_Py_DebugOffsets`, and the reducer self-tests them on a probe generator
//! before anything is trusted (`reduce/generator.rs`).
//!
//! Nothing here calls private CPython functions: only memory is read and written. A `Gen` is
//! an exact generator, coroutine or async generator (checked when it is made). `restore`
//! re-checks the skeleton it writes into with no Python code running between the check and
//! the writes, and releases what it replaced only after the frame is complete.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use super::layouts;

/// Where the fields live in one CPython minor version (x86-64/aarch64 release builds).
pub struct Layout {
    pub minor: u32,
    pub gen_iframe: usize,
    pub gen_frame_state: usize,
    pub gen_exc_value: usize,
    pub frame_code: usize,
    pub frame_instr: usize,
    pub frame_func: usize,
    pub frame_stack: usize,
    pub frame_previous: usize,
    pub frame_localsplus: usize,
    pub code_adaptive: usize,
    pub code_nlocalsplus: usize,
    pub code_stacksize: usize,
    /// 3.12+: `PyCodeObject._co_monitoring` and, in `_PyCoMonitoringData`, `lines` and
    /// `per_instruction_opcodes` (0 before 3.12).
    pub code_monitoring: usize,
    pub monitoring_lines: usize,
    pub monitoring_per_instruction: usize,
    /// The opcodes whose de-instrumenting reads that data (-1: none on this version).
    pub op_instrumented_line: i32,
    pub op_instrumented_instruction: i32,
    /// 3.13+: `PyCodeObject.co_executors` (0 before), and ENTER_EXECUTOR (-1 before).
    pub code_executors: usize,
    pub op_enter_executor: i32,
    pub state_created: i32,
    pub state_suspended: i32,
    pub state_suspended_yield_from: i32,
    /// 3.15: a delegate being read under a lock (busy); older layouts repeat `state_executing`.
    pub state_suspended_yield_from_locked: i32,
    pub state_executing: i32,
    pub state_completed: i32,
    pub state_cleared: i32,
    pub code_unit: usize,
    /// 3.15: where `PyTypeObject` keeps `_tp_iteritem` (0 before 3.15).
    pub type_iteritem: usize,
    /// (field, where `_PyRuntime` stores its offset, the offset we compiled in): 3.13+.
    pub debug_offsets: &'static [(&'static str, usize, usize)],
}

impl Layout {
    /// 3.13+ keep `instr_ptr` (the next instruction); 3.11/3.12 `prev_instr` (the current one).
    fn instr_is_next(&self) -> bool {
        self.minor >= 13
    }

    /// 3.14+ frames hold tagged `_PyStackRef`s and a stack pointer instead of an index.
    fn stackrefs(&self) -> bool {
        self.minor >= 14
    }

    pub fn tag(&self) -> String {
        format!("cpython-3.{}", self.minor)
    }
}

/// The frame state of a generator, normalised across versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenState {
    Created,
    Suspended,
    /// Suspended in `yield from`/`await` (3.13+ mark it; older versions report Suspended).
    SuspendedYieldFrom,
    Running,
    Finished,
}

impl GenState {
    /// The stream's number for a resumable state (docs/FORMAT.md).
    pub fn wire(self) -> u8 {
        match self {
            GenState::Created => 0,
            GenState::Suspended => 1,
            GenState::SuspendedYieldFrom => 2,
            GenState::Running | GenState::Finished => 255,
        }
    }

    pub fn from_wire(n: u8) -> Option<GenState> {
        match n {
            0 => Some(GenState::Created),
            1 => Some(GenState::Suspended),
            2 => Some(GenState::SuspendedYieldFrom),
            _ => None,
        }
    }
}

/// One slot of `localsplus` (locals, cells, free variables, then the value stack).
pub enum Slot<'py> {
    Null,
    Object(Bound<'py, PyAny>),
    /// A 3.14+ tagged integer (`PyStackRef_TagInt`): a saved `lasti`, a 3.15 iteration index.
    TaggedInt(isize),
}

/// A copy of a generator's frame, taken before any of it is pickled (so a `__reduce__` that
/// resumes the generator cannot change what we read half-way).
pub struct Snapshot<'py> {
    pub code: Bound<'py, PyAny>,
    pub func: Bound<'py, PyAny>,
    /// In code units: the `YIELD_VALUE` it waits after, or the `RETURN_GENERATOR` if not started.
    pub offset: usize,
    pub nlocalsplus: usize,
    pub slots: Vec<Slot<'py>>,
    pub exc: Option<Bound<'py, PyAny>>,
}

#[cfg(not(any(PyPy, GraalPy)))]
extern "C" {
    /// CPython's runtime state; 3.13+ start it with `_Py_DebugOffsets` (PyAPI_DATA, exported).
    static _PyRuntime: u8;
}

static ACTIVE: PyOnceLock<Result<&'static Layout, String>> = PyOnceLock::new();

/// The layout of this interpreter, or why there is none (the reason names the build).
pub fn active(py: Python<'_>) -> Result<&'static Layout, String> {
    ACTIVE.get_or_init(py, || choose(py)).clone()
}

fn choose(py: Python<'_>) -> Result<&'static Layout, String> {
    if cfg!(any(PyPy, GraalPy)) {
        // PyPy's frames are the JIT's own objects: cpyext shows C code no `_PyInterpreterFrame`
        // to read or write, so a started generator has no state satchel could capture.
        let implementation = py
            .import("sys")
            .and_then(|s| {
                s.getattr("implementation")?
                    .getattr("name")?
                    .extract::<String>()
            })
            .unwrap_or_else(|_| "this interpreter".into());
        let version = py.version_info();
        let name = if implementation == "pypy" {
            "PyPy"
        } else {
            &implementation
        };
        return Err(format!(
            "{name} {}.{} (its frames are not CPython's: only not-started and finished \
             generators pickle there)",
            version.major, version.minor
        ));
    }
    let sys = py.import("sys").map_err(|e| e.to_string())?;
    let version = py.version_info();
    let build = format!("CPython {}.{}", version.major, version.minor);
    let free_threaded = py
        .import("sysconfig")
        .and_then(|s| s.call_method1("get_config_var", ("Py_GIL_DISABLED",)))
        .and_then(|v| v.is_truthy())
        .unwrap_or(false);
    if free_threaded {
        return Err(format!("{build} free-threaded (no known frame layout)"));
    }
    if sys.hasattr("gettotalrefcount").unwrap_or(true) || sys.hasattr("getobjects").unwrap_or(true)
    {
        return Err(format!("{build} debug build (no known frame layout)"));
    }
    let layout = match (version.major, version.minor) {
        (3, 11) => &layouts::CPYTHON_3_11,
        (3, 12) => &layouts::CPYTHON_3_12,
        (3, 13) => &layouts::CPYTHON_3_13,
        (3, 14) => &layouts::CPYTHON_3_14,
        (3, 15) => &layouts::CPYTHON_3_15,
        _ => return Err(format!("{build} (no known frame layout)")),
    };
    if std::mem::size_of::<usize>() != 8 {
        return Err(format!(
            "{build} on a 32-bit platform (no known frame layout)"
        ));
    }
    check_debug_offsets(layout, version.minor).map_err(|e| format!("{build}: {e}"))?;
    Ok(layout)
}

/// 3.13+: the interpreter publishes its own struct offsets for out-of-process debuggers; they
/// must agree with the ones compiled in.
fn check_debug_offsets(layout: &Layout, minor: u8) -> Result<(), String> {
    if layout.debug_offsets.is_empty() {
        return Ok(());
    }
    #[cfg(any(PyPy, GraalPy))]
    let _ = minor;
    #[cfg(not(any(PyPy, GraalPy)))]
    {
        // SAFETY: _PyRuntime is a static exported by the interpreter that loaded us; on 3.13+ it
        // begins with _Py_DebugOffsets (cookie[8], version u64, then u64 offsets). We read the
        // cookie first and only read further (at offsets generated from the same version's
        // headers, all inside the struct) once it is confirmed.
        unsafe {
            // The static is declared as one byte; the C object is the whole _PyRuntimeState.
            // Reads past the declared byte go through the exposed address, not the 1-byte place.
            let base: *const u8 = std::ptr::with_exposed_provenance(
                std::ptr::addr_of!(_PyRuntime).expose_provenance(),
            );
            let cookie = std::slice::from_raw_parts(base, 8);
            if cookie != b"xdebugpy" {
                return Err("_PyRuntime has no debug offsets cookie".into());
            }
            let version = std::ptr::read_unaligned(base.add(8) as *const u64);
            if (version >> 16) & 0xff != minor as u64 {
                return Err(format!("_PyRuntime debug offsets are for {version:#x}"));
            }
            for &(name, at, expected) in layout.debug_offsets {
                let found = std::ptr::read_unaligned(base.add(at) as *const u64);
                if found != expected as u64 {
                    return Err(format!(
                        "the interpreter says {name} is at {found}, satchel was built for {expected}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Pointer to a field `at` bytes into an object.
///
/// # Safety
/// `base` must point to an object at least `at + size_of::<T>()` bytes long.
unsafe fn field<T>(base: *mut u8, at: usize) -> *mut T {
    // SAFETY: the caller guarantees the field lies inside the object.
    unsafe { base.add(at) as *mut T }
}

/// An exact generator, coroutine or async generator: the objects whose head has the
/// `PyGenObject` layout.
#[derive(Clone, Copy)]
pub struct Gen<'a, 'py>(&'a Bound<'py, PyAny>);

impl<'a, 'py> Gen<'a, 'py> {
    pub fn new(obj: &'a Bound<'py, PyAny>) -> Option<Self> {
        let refs = crate::typeref::typerefs(obj.py());
        let ty = super::type_addr(obj);
        (ty == refs.generator || ty == refs.coroutine || ty == refs.async_generator)
            .then_some(Gen(obj))
    }

    fn raw(&self) -> *mut u8 {
        self.0.as_ptr() as *mut u8
    }

    /// The embedded frame (its address; valid while the generator has not finished).
    fn frame(&self, layout: &Layout) -> *mut u8 {
        // SAFETY: gi_iframe is inside the generator object (an address, not a read).
        unsafe { self.raw().add(layout.gen_iframe) }
    }
}

/// The generator's frame state.
pub fn state(gen: Gen<'_, '_>, layout: &Layout) -> GenState {
    // SAFETY: a Gen has the PyGenObject head; gi_frame_state is an int8 inside it at the
    // generated offset.
    let st = unsafe { *field::<i8>(gen.raw(), layout.gen_frame_state) } as i32;
    if st == layout.state_created {
        GenState::Created
    } else if st == layout.state_suspended {
        GenState::Suspended
    } else if st == layout.state_suspended_yield_from {
        GenState::SuspendedYieldFrom
    } else if st == layout.state_executing || st == layout.state_suspended_yield_from_locked {
        GenState::Running
    } else if st == layout.state_completed || st == layout.state_cleared {
        GenState::Finished
    } else {
        // A state this layout does not know: treat it as busy, never as resumable.
        GenState::Running
    }
}

/// Strips the tag bits of a 3.14+ `_PyStackRef` holding an object.
fn untag(bits: usize, layout: &Layout) -> usize {
    if layout.stackrefs() {
        bits & !3
    } else {
        bits
    }
}

/// The addresses of a live frame's code object and function.
///
/// # Safety
/// `frame` must be the embedded frame of a created or suspended generator.
unsafe fn frame_code_func(frame: *mut u8, layout: &Layout) -> (usize, usize) {
    // SAFETY: both fields are pointer-sized members of _PyInterpreterFrame (a _PyStackRef on
    // 3.14+, whose tag bits we strip); a created or suspended frame holds both, strongly.
    unsafe {
        (
            untag(*field::<usize>(frame, layout.frame_code), layout),
            untag(*field::<usize>(frame, layout.frame_func), layout),
        )
    }
}

/// Reads `co_nlocalsplus`, `co_stacksize` and the address of `co_code_adaptive`.
///
/// # Safety
/// `code` must point to a live code object of this interpreter.
unsafe fn code_facts(code: *mut u8, layout: &Layout) -> (usize, usize, usize) {
    // SAFETY: plain int fields and the start of the trailing code array of PyCodeObject, at
    // offsets generated from this version's headers.
    unsafe {
        let nlp = *field::<i32>(code, layout.code_nlocalsplus);
        let stacksize = *field::<i32>(code, layout.code_stacksize);
        (
            nlp.max(0) as usize,
            stacksize.max(0) as usize,
            code.add(layout.code_adaptive) as usize,
        )
    }
}

/// The index of the stack top from localsplus, if it is sane.
///
/// # Safety
/// `frame` must be the embedded frame of a created or suspended generator.
unsafe fn stack_top(frame: *mut u8, layout: &Layout) -> Option<usize> {
    // SAFETY: localsplus is the frame's trailing array (address only).
    let localsplus = unsafe { frame.add(layout.frame_localsplus) } as usize;
    if layout.stackrefs() {
        // SAFETY: stackpointer is a pointer field of the 3.14+ frame.
        let sp = unsafe { *field::<usize>(frame, layout.frame_stack) };
        (sp >= localsplus && (sp - localsplus) % 8 == 0).then(|| (sp - localsplus) / 8)
    } else {
        // SAFETY: stacktop is an int field of the 3.11-3.13 frame.
        let top = unsafe { *field::<i32>(frame, layout.frame_stack) };
        usize::try_from(top).ok()
    }
}

/// Copies a created or suspended generator's frame. `code` is the generator's code object
/// (`gi_code`) and `units` its length in code units, both obtained before this call: nothing
/// here runs Python code, so the generator cannot move while it is read. Returns why not when
/// the frame is not what a suspended generator's frame must look like.
pub fn snapshot<'py>(
    gen: Gen<'_, 'py>,
    layout: &Layout,
    code: &Bound<'py, PyAny>,
    units: usize,
) -> Result<Snapshot<'py>, String> {
    let py = code.py();
    let st = state(gen, layout);
    if !matches!(
        st,
        GenState::Created | GenState::Suspended | GenState::SuspendedYieldFrom
    ) {
        return Err(format!("its frame state is {st:?}"));
    }
    let frame = gen.frame(layout);
    // SAFETY: the generator is created or suspended, so its frame is live.
    let (code_ptr, func_ptr) = unsafe { frame_code_func(frame, layout) };
    if code_ptr != super::addr(code) {
        return Err("its frame does not hold its code object".into());
    }
    // SAFETY: reading the type pointer of the frame's function (a live object it owns) before
    // taking any reference to it.
    let func_type = unsafe { ffi::Py_TYPE(func_ptr as *mut ffi::PyObject) };
    if func_type != std::ptr::addr_of_mut!(ffi::PyFunction_Type) {
        return Err("its frame does not hold a function".into());
    }
    // SAFETY: the frame's strong reference to a live function; we take a new one.
    let func = unsafe { Bound::from_borrowed_ptr(py, func_ptr as *mut ffi::PyObject) };
    // SAFETY: code is a live code object (it is `code`).
    let (nlp, stacksize, adaptive) = unsafe { code_facts(code_ptr as *mut u8, layout) };
    // SAFETY: the instruction pointer is a pointer-sized field of the live frame.
    let instr = unsafe { *field::<usize>(frame, layout.frame_instr) };
    let unit = layout.code_unit;
    if instr < adaptive || (instr - adaptive) % unit != 0 || (instr - adaptive) / unit > units {
        return Err("its instruction pointer is outside its code".into());
    }
    let mut offset = (instr - adaptive) / unit;
    if layout.instr_is_next() {
        if offset == 0 {
            return Err("its instruction pointer is at the start of its code".into());
        }
        offset -= 1;
    }
    // SAFETY: the frame is live.
    let Some(top) = (unsafe { stack_top(frame, layout) }) else {
        return Err("its stack top is outside its frame".into());
    };
    if top < nlp || top - nlp > stacksize {
        return Err(format!(
            "its stack depth {} is outside 0..={stacksize}",
            top as isize - nlp as isize
        ));
    }
    // SAFETY: the address of the frame's trailing localsplus array.
    let localsplus = unsafe { frame.add(layout.frame_localsplus) } as *const usize;
    let mut slots = Vec::with_capacity(top);
    for i in 0..top {
        // SAFETY: i < top <= nlocalsplus + stacksize: inside the localsplus array (the object
        // was allocated with room for co_nlocalsplus + co_stacksize slots); each slot is NULL or
        // a reference the frame owns, so taking a new strong reference is sound.
        let bits = unsafe { *localsplus.add(i) };
        let slot = if layout.stackrefs() {
            if bits == 1 {
                Slot::Null
            } else if bits & 3 == 3 {
                Slot::TaggedInt((bits as isize) >> 2)
            } else {
                let ptr = (bits & !3) as *mut ffi::PyObject;
                // SAFETY: an untagged or deferred stackref points to a live object.
                Slot::Object(unsafe { Bound::from_borrowed_ptr(py, ptr) })
            }
        } else if bits == 0 {
            Slot::Null
        } else {
            // SAFETY: a non-NULL slot of a live frame is a strong reference.
            Slot::Object(unsafe { Bound::from_borrowed_ptr(py, bits as *mut ffi::PyObject) })
        };
        slots.push(slot);
    }
    // SAFETY: gi_exc_state.exc_value is a strong reference or NULL.
    let exc = unsafe {
        let p = *field::<*mut ffi::PyObject>(gen.raw(), layout.gen_exc_value);
        Bound::from_borrowed_ptr_or_opt(py, p)
    };
    Ok(Snapshot {
        code: code.clone(),
        func,
        offset,
        nlocalsplus: nlp,
        slots,
        exc,
    })
}

/// What `restore` writes into a skeleton generator.
pub struct Restore<'a, 'py> {
    pub state: GenState,
    pub offset: usize,
    pub slots: &'a [Slot<'py>],
    pub exc: Option<&'a Bound<'py, PyAny>>,
}

/// A skeleton's code object, `co_nlocalsplus` and `co_stacksize`, for the caller's checks
/// (read only; `restore` checks the skeleton again itself).
pub fn skeleton_code<'py>(
    gen: Gen<'_, 'py>,
    layout: &Layout,
) -> Result<(Bound<'py, PyAny>, usize, usize), String> {
    let py = gen.0.py();
    if state(gen, layout) != GenState::Created {
        return Err("the skeleton generator is not in its created state".into());
    }
    // SAFETY: a created generator's frame is live.
    let (code_ptr, _) = unsafe { frame_code_func(gen.frame(layout), layout) };
    // SAFETY: reading the type pointer of the frame's code object before referencing it.
    // (`types.CodeType`'s address: PyPy's cpyext exports no `PyCode_Type`, and never gets here,
    // but the comparison is the same one everywhere.)
    if unsafe { ffi::Py_TYPE(code_ptr as *mut ffi::PyObject) } as usize
        != crate::typeref::typerefs(py).code
    {
        return Err("the skeleton's frame does not hold a code object".into());
    }
    // SAFETY: the frame's strong reference to a live code object; we take a new one.
    let code = unsafe { Bound::from_borrowed_ptr(py, code_ptr as *mut ffi::PyObject) };
    // SAFETY: a live code object.
    let (nlp, stacksize, _) = unsafe { code_facts(code_ptr as *mut u8, layout) };
    Ok((code, nlp, stacksize))
}

/// Whether an object is immortal (3.12+ on 64-bit: the low 32 bits of its refcount are
/// negative as an int32).
fn immortal(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: ob_refcnt is the first word of every object; we only read it.
    let refcnt = unsafe { *(obj.as_ptr() as *const u64) };
    (refcnt as u32 as i32) < 0
}

/// Writes a suspended frame into a skeleton generator of `code`, after checking (with no
/// Python code running in between) that the skeleton is still a created generator of that
/// code, that the slots fit, and that the offset is inside the code. The
/// caller has validated the offset's opcode and the stack depth against `code` and the slot
/// contents (`satchel._frames`' model). The frame state is written last; the values the
/// skeleton's prologue left (locals, and on 3.15 a generator expression's iterator) are
/// released after that.
pub fn restore(
    gen: Gen<'_, '_>,
    layout: &Layout,
    code: &Bound<'_, PyAny>,
    units: usize,
    r: Restore<'_, '_>,
) -> Result<(), String> {
    let st = match r.state {
        GenState::Suspended => layout.state_suspended,
        GenState::SuspendedYieldFrom => layout.state_suspended_yield_from,
        _ => return Err("only a suspended frame is restored".into()),
    };
    if state(gen, layout) != GenState::Created {
        return Err("the skeleton generator is no longer in its created state".into());
    }
    let frame = gen.frame(layout);
    // SAFETY: the skeleton is created, so its frame is live.
    let (code_ptr, _) = unsafe { frame_code_func(frame, layout) };
    if code_ptr != super::addr(code) {
        return Err("the skeleton's frame does not hold the checked code object".into());
    }
    // SAFETY: `code` is a live code object.
    let (nlp, stacksize, adaptive) = unsafe { code_facts(code_ptr as *mut u8, layout) };
    // A created frame holds what its prologue pushed: nothing, or (3.15 generator
    // expressions) the iterator it took; all of it is released once the frame is written.
    // SAFETY: the frame is live.
    let top0 = match unsafe { stack_top(frame, layout) } {
        Some(top) if top >= nlp && top - nlp <= stacksize => top,
        _ => return Err("the skeleton's value stack is out of range".into()),
    };
    // SAFETY: previous is a pointer field of the live frame, exc_value one of the head.
    let linked = unsafe {
        !(*field::<*mut u8>(frame, layout.frame_previous)).is_null()
            || !(*field::<*mut ffi::PyObject>(gen.raw(), layout.gen_exc_value)).is_null()
    };
    if linked {
        return Err("the skeleton is running or holds an exception".into());
    }
    let n = r.slots.len();
    if n < nlp || n - nlp > stacksize {
        return Err("the slots do not fit the frame".into());
    }
    let unit = r.offset + usize::from(layout.instr_is_next());
    if unit >= units {
        return Err("the offset is past the end of the code".into());
    }
    let encode = |slot: &Slot<'_>| -> usize {
        match slot {
            Slot::Null => usize::from(layout.stackrefs()),
            // 3.14+ compare None/True/False by their exact (tagged) bits, and an immortal
            // object is always referenced with the tag; a tagged reference owns nothing.
            Slot::Object(obj) if layout.stackrefs() && immortal(obj) => obj.as_ptr() as usize | 1,
            Slot::Object(obj) => obj.clone().into_ptr() as usize,
            Slot::TaggedInt(i) => ((*i as usize) << 2) | 3,
        }
    };
    // SAFETY: the address of the frame's trailing localsplus array.
    let localsplus = unsafe { frame.add(layout.frame_localsplus) } as *mut usize;
    let mut replaced = Vec::with_capacity(top0);
    for i in 0..top0 {
        // SAFETY: i < top0 <= nlp + co_stacksize: a slot the prologue initialised, which the
        // frame owns; it is released once the frame no longer refers to it (below).
        replaced.push(unsafe { *localsplus.add(i) });
    }
    for (i, slot) in r.slots.iter().enumerate() {
        let new = encode(slot);
        // SAFETY: i < n <= nlp + co_stacksize (checked above): inside the localsplus array.
        // Below top0 the old value is kept in `replaced`; from top0 on the slots are
        // uninitialised.
        unsafe {
            *localsplus.add(i) = new;
        }
    }
    // SAFETY: the stack top field of the live frame; n is within the localsplus array.
    unsafe {
        if layout.stackrefs() {
            *field::<usize>(frame, layout.frame_stack) = localsplus.add(n) as usize;
        } else {
            *field::<i32>(frame, layout.frame_stack) = n as i32;
        }
    }
    // SAFETY: unit < the code's length (checked above): the pointer stays inside
    // co_code_adaptive.
    unsafe {
        *field::<usize>(frame, layout.frame_instr) = adaptive + unit * layout.code_unit;
    }
    if let Some(exc) = r.exc {
        // SAFETY: exc_value is NULL (checked above); we store a new strong reference.
        unsafe {
            *field::<*mut ffi::PyObject>(gen.raw(), layout.gen_exc_value) = exc.clone().into_ptr();
        }
    }
    // SAFETY: gi_frame_state is an int8 of the head; written last, once the frame is complete.
    unsafe {
        *field::<i8>(gen.raw(), layout.gen_frame_state) = st as i8;
    }
    for old in replaced {
        // SAFETY: each is a reference the frame owned and no longer holds.
        unsafe { release(old, layout) };
    }
    Ok(())
}

/// Releases a reference a frame slot held (a `_PyStackRef` close on 3.14+).
///
/// # Safety
/// `bits` must be a slot value the frame owned.
unsafe fn release(bits: usize, layout: &Layout) {
    // Tagged 3.14+ refs (deferred, immortal, int) and NULL own nothing.
    if layout.stackrefs() && bits & 1 != 0 {
        return;
    }
    // SAFETY: an owned, untagged, possibly NULL reference.
    unsafe { ffi::Py_XDECREF(bits as *mut ffi::PyObject) };
}

/// `PyIter_Check`: the object's type has a `tp_iternext` that is not the "not implemented"
/// one, so `FOR_ITER` may call it directly.
pub fn is_iterator(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: PyIter_Check only reads a slot of the object's (always valid) type.
    unsafe { ffi::PyIter_Check(obj.as_ptr()) != 0 }
}

/// 3.15: whether the object's type has `_tp_iteritem`, so `FOR_ITER`/`SEND` may iterate it by a
/// tagged index (a "virtual iterator": exact lists, tuples, strs, bytes).
pub fn iterates_by_index(obj: &Bound<'_, PyAny>, layout: &Layout) -> bool {
    if layout.type_iteritem == 0 {
        return false;
    }
    // SAFETY: every type object is at least a PyTypeObject, and type_iteritem is the offset of
    // its pointer-sized _tp_iteritem slot in this version's headers; we only read it.
    unsafe {
        let ty = ffi::Py_TYPE(obj.as_ptr()) as *mut u8;
        *field::<usize>(ty, layout.type_iteritem) != 0
    }
}

/// What de-instrumenting `code`'s adaptive bytecode would read, and whether it is there.
#[derive(Debug, PartialEq, Eq)]
pub enum Deinstrument {
    /// No INSTRUMENTED_LINE, INSTRUMENTED_INSTRUCTION or ENTER_EXECUTOR unit: nothing is read
    /// beyond the bytecode itself.
    Nothing,
    /// There are such units, and the monitoring data or executors they need exist.
    Present,
    /// There are such units and what they need is missing (a code object built from arbitrary
    /// bytes): CPython's co_code getter would dereference NULL or read past an array.
    Missing,
}

/// CPython's co_code getter (`_Py_GetBaseCodeUnit`) takes the original opcode of an
/// INSTRUMENTED_LINE from `_co_monitoring->lines`, of an INSTRUMENTED_INSTRUCTION from
/// `_co_monitoring->per_instruction_opcodes`, and of an ENTER_EXECUTOR from
/// `co_executors->executors[oparg]`, without checking any of them. `found` holds the
/// (opcode, oparg) of such instructions, found by walking `code`'s instructions.
pub fn deinstrument(code: &Bound<'_, PyAny>, found: &[(u8, u8)], layout: &Layout) -> Deinstrument {
    let has = |op: i32| found.iter().any(|&(o, _)| i32::from(o) == op);
    let line = has(layout.op_instrumented_line);
    let instruction = has(layout.op_instrumented_instruction);
    let executor = has(layout.op_enter_executor);
    if !(line || instruction || executor) {
        return Deinstrument::Nothing;
    }
    if super::type_addr(code) != crate::typeref::typerefs(code.py()).code {
        return Deinstrument::Missing;
    }
    let base = code.as_ptr() as *const u8;
    let null = std::ptr::null::<u8>();
    // SAFETY: `code` is an exact code object, and layout's offsets were generated from this
    // interpreter version's own headers (checked against its debug offsets on 3.13+): each
    // read is a pointer field inside the PyCodeObject, or inside the _PyCoMonitoringData /
    // _PyExecutorArray it points to, read only once that pointer is known to be non-NULL.
    // An executor index is checked against the array's `size` (its first int) before use.
    unsafe {
        if line || instruction {
            if layout.code_monitoring == 0 {
                return Deinstrument::Missing;
            }
            let monitoring = *(base.add(layout.code_monitoring) as *const *const u8);
            if monitoring == null {
                return Deinstrument::Missing;
            }
            let lines = *(monitoring.add(layout.monitoring_lines) as *const *const u8);
            let per_instruction =
                *(monitoring.add(layout.monitoring_per_instruction) as *const *const u8);
            if (line && lines == null) || (instruction && per_instruction == null) {
                return Deinstrument::Missing;
            }
        }
        if executor {
            if layout.code_executors == 0 {
                return Deinstrument::Missing;
            }
            let array = *(base.add(layout.code_executors) as *const *const u8);
            if array == null {
                return Deinstrument::Missing;
            }
            let size = *(array as *const i32);
            let slots = array.add(8) as *const *const u8; // after `int size, capacity`
            for &(op, arg) in found {
                if i32::from(op) != layout.op_enter_executor {
                    continue;
                }
                let index = i32::from(arg);
                if index >= size || *slots.add(index as usize) == null {
                    return Deinstrument::Missing;
                }
            }
        }
    }
    Deinstrument::Present
}
