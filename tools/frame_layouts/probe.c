/* Prints the CPython generator and frame layout facts satchel reads (src/ffi/layouts.rs),
 * straight from the interpreter's own internal headers: compile with -DPy_BUILD_CORE against
 * include/pythonX.Y (gen_layouts.py does that for every interpreter it finds). */
#define Py_BUILD_CORE 1
#include "Python.h"
#include "internal/pycore_frame.h"
#include "opcode.h"
#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_runtime.h"
#endif
#if PY_VERSION_HEX >= 0x030E0000
#include "internal/pycore_interpframe_structs.h"
#include "internal/pycore_instruments.h"
#endif
#include <stddef.h>
#include <stdio.h>

#define OFF(name, type, field) printf("    " #name ": %zu,\n", offsetof(type, field))
#define VAL(name, value) printf("    " #name ": %d,\n", (int)(value))

int main(void) {
    printf("    minor: %d,\n", PY_MINOR_VERSION);
    OFF(gen_iframe, PyGenObject, gi_iframe);
    OFF(gen_frame_state, PyGenObject, gi_frame_state);
    OFF(gen_exc_value, PyGenObject, gi_exc_state.exc_value);
#if PY_VERSION_HEX >= 0x030D0000
    OFF(frame_code, _PyInterpreterFrame, f_executable);
    OFF(frame_instr, _PyInterpreterFrame, instr_ptr);
#else
    OFF(frame_code, _PyInterpreterFrame, f_code);
    OFF(frame_instr, _PyInterpreterFrame, prev_instr);
#endif
#if PY_VERSION_HEX >= 0x030C0000
    OFF(frame_func, _PyInterpreterFrame, f_funcobj);
#else
    OFF(frame_func, _PyInterpreterFrame, f_func);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    OFF(frame_stack, _PyInterpreterFrame, stackpointer);
#else
    OFF(frame_stack, _PyInterpreterFrame, stacktop);
#endif
    OFF(frame_previous, _PyInterpreterFrame, previous);
    OFF(frame_localsplus, _PyInterpreterFrame, localsplus);
    OFF(code_adaptive, PyCodeObject, co_code_adaptive);
    OFF(code_nlocalsplus, PyCodeObject, co_nlocalsplus);
    OFF(code_stacksize, PyCodeObject, co_stacksize);
    /* What CPython's co_code getter dereferences to de-instrument bytecode (3.12+): the
     * monitoring data for INSTRUMENTED_LINE / INSTRUMENTED_INSTRUCTION and, 3.13+, the
     * executors for ENTER_EXECUTOR. check_bytecode (src/reduce/code.rs) makes sure they exist
     * before any read of co_code; -1 / 0 where the interpreter has no such thing. */
#if PY_VERSION_HEX >= 0x030C0000
    OFF(code_monitoring, PyCodeObject, _co_monitoring);
    OFF(monitoring_lines, _PyCoMonitoringData, lines);
    OFF(monitoring_per_instruction, _PyCoMonitoringData, per_instruction_opcodes);
    VAL(op_instrumented_line, INSTRUMENTED_LINE);
    VAL(op_instrumented_instruction, INSTRUMENTED_INSTRUCTION);
#else
    VAL(code_monitoring, 0);
    VAL(monitoring_lines, 0);
    VAL(monitoring_per_instruction, 0);
    VAL(op_instrumented_line, -1);
    VAL(op_instrumented_instruction, -1);
#endif
#if PY_VERSION_HEX >= 0x030D0000
    OFF(code_executors, PyCodeObject, co_executors);
    VAL(op_enter_executor, ENTER_EXECUTOR);
#else
    VAL(code_executors, 0);
    VAL(op_enter_executor, -1);
#endif
    VAL(state_created, FRAME_CREATED);
    VAL(state_suspended, FRAME_SUSPENDED);
#if PY_VERSION_HEX >= 0x030D0000
    VAL(state_suspended_yield_from, FRAME_SUSPENDED_YIELD_FROM);
#else
    VAL(state_suspended_yield_from, FRAME_SUSPENDED);
#endif
#if PY_VERSION_HEX >= 0x030F0000
    /* 3.15 renumbered the states, dropped FRAME_COMPLETED (a finished frame is CLEARED) and
     * added FRAME_SUSPENDED_YIELD_FROM_LOCKED (a delegate being read: busy, never resumable). */
    VAL(state_suspended_yield_from_locked, FRAME_SUSPENDED_YIELD_FROM_LOCKED);
    VAL(state_executing, FRAME_EXECUTING);
    VAL(state_completed, FRAME_CLEARED);
#else
    VAL(state_suspended_yield_from_locked, FRAME_EXECUTING);
    VAL(state_executing, FRAME_EXECUTING);
    VAL(state_completed, FRAME_COMPLETED);
#endif
    VAL(state_cleared, FRAME_CLEARED);
    printf("    code_unit: %zu,\n", sizeof(_Py_CODEUNIT));
#if PY_VERSION_HEX >= 0x030F0000
    /* 3.15 iterates objects whose type has this slot by a tagged index (virtual iterators) */
    OFF(type_iteritem, PyTypeObject, _tp_iteritem);
#else
    VAL(type_iteritem, 0);
#endif
    /* 3.13+: where the interpreter's own _Py_DebugOffsets (the first member of _PyRuntime)
     * stores each of these offsets, so the running interpreter can confirm them. */
    printf("    debug_offsets: &[\n");
#if PY_VERSION_HEX >= 0x030D0000
#define DBG(name, member, value) \
    printf("        (\"" #name "\", %zu, %zu),\n", \
           offsetof(_PyRuntimeState, debug_offsets) + offsetof(_Py_DebugOffsets, member), \
           (size_t)(value))
    DBG(frame_previous, interpreter_frame.previous, offsetof(_PyInterpreterFrame, previous));
    DBG(frame_code, interpreter_frame.executable, offsetof(_PyInterpreterFrame, f_executable));
    DBG(frame_instr, interpreter_frame.instr_ptr, offsetof(_PyInterpreterFrame, instr_ptr));
    DBG(frame_localsplus, interpreter_frame.localsplus, offsetof(_PyInterpreterFrame, localsplus));
    DBG(code_adaptive, code_object.co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
#if PY_VERSION_HEX >= 0x030E0000
    DBG(frame_stack, interpreter_frame.stackpointer, offsetof(_PyInterpreterFrame, stackpointer));
    DBG(gen_iframe, gen_object.gi_iframe, offsetof(PyGenObject, gi_iframe));
    DBG(gen_frame_state, gen_object.gi_frame_state, offsetof(PyGenObject, gi_frame_state));
#endif
#endif
    printf("    ],\n");
    return 0;
}
