// pyo3's interpreter cfgs (PyPy, Py_3_x, Py_GIL_DISABLED) for satchel's own code: the frame
// access in src/ffi/frame.rs exists only for CPython.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
