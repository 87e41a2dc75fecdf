//! itertools iterators in mid-iteration (they sit on suspended generators' stacks, in
//! `for x in islice(...)`). CPython 3.14 removed their pickling and 3.12/3.13 warn, so satchel
//! reduces them itself, on every version, to stdlib calls that rebuild the same remaining
//! sequence (a stdlib-only receiver loads them):
//!
//! - `count(n, step)` and `repeat(x, times)`, from their public repr, referents and length hint;
//! - `islice(it, next - cnt, stop - cnt, step)`, shifted by what it already consumed;
//! - `chain.from_iterable(chain((active,), source))`, the current iterable first;
//! - `cycle(saved[index:] + saved[:index])` once the input is exhausted, `cycle(it)` before it
//!   yielded anything, else `islice(cycle(chain(saved, it)), len(saved), None)` (skips what
//!   was seen, keeps saving).
//!
//! The last three have no accessor for their C fields; `ffi::object_words` reads them, a probe
//! self-test checks the layout once, and an address is only used if the same object is among
//! the iterator's `gc.get_referents` (nothing is dereferenced on trust).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple};

use super::not_implemented;
use crate::ffi::{addr, object_words};

struct Itertools {
    module: Py<PyAny>,
    layout_ok: bool,
}

static ITERTOOLS: PyOnceLock<Itertools> = PyOnceLock::new();

fn itertools(py: Python<'_>) -> PyResult<&'static Itertools> {
    ITERTOOLS.get_or_try_init(py, || {
        let m = py.import("itertools")?;
        Ok(Itertools {
            module: m.into_any().unbind(),
            layout_ok: self_test(py).unwrap_or(false),
        })
    })
}

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let t = itertools(py)?;
    let ty = crate::ffi::type_addr(obj);
    let m = t.module.bind(py);
    let [count, repeat, islice, chain, _cycle] = crate::typeref::typerefs(py).itertools;
    let reduced = if ty == count {
        reduce_count(obj, m)?
    } else if ty == repeat {
        reduce_repeat(obj, m)?
    } else if !t.layout_ok {
        None
    } else if ty == islice {
        reduce_islice(obj, m)?
    } else if ty == chain {
        reduce_chain(obj, m)?
    } else {
        reduce_cycle(obj, m)?
    };
    Ok(reduced.unwrap_or_else(|| not_implemented(py)))
}

fn tuple2<'py>(f: Bound<'py, PyAny>, args: Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyTuple::new(f.py(), [f, args.into_any()])?.into_any())
}

/// An argument that is itself built by a call when loaded.
fn nested<'py>(f: Bound<'py, PyAny>, args: Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    Ok(super::Reduced::new(f.py(), f, args)?.into_any())
}

/// The object among `obj`'s referents at `address` (0 is NULL: None).
fn referent<'py>(
    referents: &[Bound<'py, PyAny>],
    address: usize,
) -> Result<Option<Bound<'py, PyAny>>, ()> {
    if address == 0 {
        return Ok(None);
    }
    referents
        .iter()
        .find(|r| addr(r) == address)
        .cloned()
        .map(Some)
        .ok_or(())
}

/// The objects `obj` holds, without its type (3.12+ made itertools heap types, whose
/// instances visit their type too).
fn referents_of<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let py = obj.py();
    let ty = obj.get_type();
    let mut out = Vec::new();
    for r in py
        .import("gc")?
        .getattr("get_referents")?
        .call1((obj,))?
        .try_iter()?
    {
        let r = r?;
        if !r.is(&ty) {
            out.push(r);
        }
    }
    Ok(out)
}

/// count: slow mode keeps (long_cnt, long_step) as objects (its referents); fast mode keeps a
/// C integer, shown by its repr `count(N)`.
fn reduce_count<'py>(
    obj: &Bound<'py, PyAny>,
    m: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    let refs = referents_of(obj)?;
    let repr = obj.repr()?.to_string();
    let args = if refs.len() == 2 {
        PyTuple::new(py, [refs[0].clone(), refs[1].clone()])?
    } else {
        let Some(inner) = repr
            .strip_prefix("count(")
            .and_then(|s| s.strip_suffix(')'))
        else {
            return Ok(None);
        };
        let Ok(n) = inner.parse::<i64>() else {
            return Ok(None);
        };
        PyTuple::new(py, [n])?
    };
    tuple2(m.getattr("count")?, args).map(Some)
}

/// repeat: the element is its one referent; the remaining count is its length hint (an
/// endless repeat has none).
fn reduce_repeat<'py>(
    obj: &Bound<'py, PyAny>,
    m: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    let refs = referents_of(obj)?;
    let [element] = refs.as_slice() else {
        return Ok(None);
    };
    // An endless repeat has no length: CPython's hint raises TypeError, PyPy's returns
    // NotImplemented. Only an int is a count of what is left.
    let args = match obj.call_method0("__length_hint__") {
        Ok(n) if n.is_instance_of::<pyo3::types::PyInt>() => {
            PyTuple::new(py, [element.clone(), n])?
        }
        _ => PyTuple::new(py, [element.clone()])?,
    };
    tuple2(m.getattr("repeat")?, args).map(Some)
}

/// islice: {it, next, stop, step, cnt}; `it` is NULL once exhausted; stop -1 is None.
fn reduce_islice<'py>(
    obj: &Bound<'py, PyAny>,
    m: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    let Some(w) = object_words(obj, 5) else {
        return Ok(None);
    };
    let refs = referents_of(obj)?;
    let Ok(it) = referent(&refs, w[0]) else {
        return Ok(None);
    };
    let (next, stop, step, cnt) = (w[1] as isize, w[2] as isize, w[3] as isize, w[4] as isize);
    let Some(it) = it else {
        let empty = PyTuple::empty(py).into_any();
        return tuple2(
            py.import("builtins")?.getattr("iter")?,
            PyTuple::new(py, [empty])?,
        )
        .map(Some);
    };
    if cnt < 0 || next < cnt || step < 1 || (stop != -1 && stop < cnt) {
        return Ok(None);
    }
    let stop = if stop == -1 {
        py.None().into_bound(py)
    } else {
        (stop - cnt).into_pyobject(py)?.into_any()
    };
    let args = PyTuple::new(
        py,
        [
            it,
            (next - cnt).into_pyobject(py)?.into_any(),
            stop,
            step.into_pyobject(py)?.into_any(),
        ],
    )?;
    tuple2(m.getattr("islice")?, args).map(Some)
}

/// chain: {source, active}; either may be NULL.
fn reduce_chain<'py>(
    obj: &Bound<'py, PyAny>,
    m: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    let Some(w) = object_words(obj, 2) else {
        return Ok(None);
    };
    let refs = referents_of(obj)?;
    let (Ok(source), Ok(active)) = (referent(&refs, w[0]), referent(&refs, w[1])) else {
        return Ok(None);
    };
    let chain = m.getattr("chain")?;
    let rest: Bound<'py, PyAny> = match (active, source) {
        (Some(a), Some(s)) => nested(
            chain.clone(),
            PyTuple::new(py, [PyTuple::new(py, [a])?.into_any(), s])?,
        )?,
        (Some(a), None) => PyTuple::new(py, [a])?.into_any(),
        (None, Some(s)) => s,
        (None, None) => PyTuple::empty(py).into_any(),
    };
    tuple2(chain.getattr("from_iterable")?, PyTuple::new(py, [rest])?).map(Some)
}

/// cycle: {it, saved, index, firstpass} (3.11-3.13) or {it, saved, index} (3.14 and 3.15,
/// where index is -1 during the first pass); `it` is NULL once the input is exhausted.
fn cycle_fields(obj: &Bound<'_, PyAny>) -> Option<(usize, usize, isize, bool)> {
    let w = object_words(obj, 4).or_else(|| object_words(obj, 3))?;
    let firstpass = w.get(3).is_some_and(|f| f & 0xffff_ffff != 0);
    Some((w[0], w[1], w[2] as isize, firstpass))
}

fn reduce_cycle<'py>(
    obj: &Bound<'py, PyAny>,
    m: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    let Some((it, saved, index, firstpass)) = cycle_fields(obj) else {
        return Ok(None);
    };
    let refs = referents_of(obj)?;
    let (Ok(it), Ok(Some(saved))) = (referent(&refs, it), referent(&refs, saved)) else {
        return Ok(None);
    };
    let Ok(saved) = saved.cast_into::<PyList>() else {
        return Ok(None);
    };
    let index = if it.is_some() { index.max(0) } else { index };
    let n = saved.len() as isize;
    if index < 0 || (n > 0 && index >= n) || (n == 0 && index != 0) {
        return Ok(None);
    }
    let cycle = m.getattr("cycle")?;
    match it {
        None => {
            let rotated = saved.get_slice(index as usize, n as usize);
            for v in saved.get_slice(0, index as usize).iter() {
                rotated.append(v)?;
            }
            tuple2(cycle, PyTuple::new(py, [rotated])?).map(Some)
        }
        Some(_) if firstpass => Ok(None),
        // Nothing seen yet (an unstarted cycle): the same cycle, still a `cycle`.
        Some(it) if n == 0 => tuple2(cycle, PyTuple::new(py, [it])?).map(Some),
        Some(it) => {
            let both = nested(
                m.getattr("chain")?,
                PyTuple::new(py, [saved.into_any(), it])?,
            )?;
            let cycled = nested(cycle, PyTuple::new(py, [both])?)?;
            let args = PyTuple::new(
                py,
                [
                    cycled,
                    n.into_pyobject(py)?.into_any(),
                    py.None().into_bound(py),
                ],
            )?;
            tuple2(m.getattr("islice")?, args).map(Some)
        }
    }
}

/// The field layout of islice, chain and cycle, checked on probes with known state.
fn self_test(py: Python<'_>) -> PyResult<bool> {
    if !cfg!(target_endian = "little") || std::mem::size_of::<usize>() != 8 {
        return Ok(false);
    }
    let ns = pyo3::types::PyDict::new(py);
    py.run(
        c"import itertools as t
s = t.islice(range(100), 2, 50, 3); next(s)
c = t.chain([1], [2, 3]); next(c)
y = t.cycle([7, 8, 9]); next(y); next(y)
z = t.cycle([7, 8]); [next(z) for _ in range(3)]
",
        Some(&ns),
        None,
    )?;
    let get = |k: &str| -> PyResult<Bound<'_, PyAny>> { Ok(ns.get_item(k)?.expect("probe")) };
    let s = get("s")?;
    let ok_islice = object_words(&s, 5).is_some_and(|w| {
        w[1] == 5
            && w[2] == 50
            && w[3] == 3
            && w[4] == 3
            && referents_of(&s).is_ok_and(|r| referent(&r, w[0]).is_ok_and(|x| x.is_some()))
    });
    let c = get("c")?;
    let ok_chain = object_words(&c, 2).is_some_and(|w| {
        referents_of(&c).is_ok_and(|r| {
            r.len() == 2
                && referent(&r, w[0]).is_ok_and(|x| x.is_some())
                && referent(&r, w[1]).is_ok_and(|x| x.is_some())
        })
    });
    let y = get("y")?;
    let ok_cycle = cycle_fields(&y).is_some_and(|(it, saved, index, firstpass)| {
        it != 0
            && !firstpass
            && (index == 0 || index == -1)
            && referents_of(&y).is_ok_and(|r| {
                referent(&r, saved).is_ok_and(|x| x.is_some_and(|l| l.len().is_ok_and(|n| n == 2)))
            })
    });
    let z = get("z")?;
    let ok_cycle_saved = cycle_fields(&z).is_some_and(|(it, _, index, _)| it == 0 && index == 1);
    Ok(ok_islice && ok_chain && ok_cycle && ok_cycle_saved)
}
