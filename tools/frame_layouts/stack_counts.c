/* Prints, as JSON, how many values each instruction pops and pushes for a range of opargs,
 * from the interpreter's own _PyOpcode_num_popped/_PyOpcode_num_pushed (3.13+ install them in
 * internal/pycore_opcode_metadata.h). tests/test_frame_model.py checks satchel's instruction
 * signatures (python/satchel/_frames.py) against them; gen_layouts.py --stack-counts writes
 * the file. */
#define Py_BUILD_CORE 1
#include "Python.h"
#define NEED_OPCODE_METADATA
#include "internal/pycore_opcode_metadata.h"
#include <stdio.h>

int main(void) {
    static const int args[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 255, 256, 257, 0x201};
    int first = 1;
    printf("{");
    for (int op = 0; op < 256; op++) {
        const char *name = _PyOpcode_OpName[op];
        /* base instructions only: co_code never holds specialized ones */
        if (name == NULL || name[0] == '\0' || name[0] == '<' || _PyOpcode_Deopt[op] != op ||
            _PyOpcode_num_popped(op, 0) < 0) {
            continue;
        }
        printf("%s\n    \"%s\": [", first ? "" : ",", name);
        first = 0;
        for (unsigned k = 0; k < sizeof(args) / sizeof(args[0]); k++) {
            printf("%s[%d, %d, %d]", k ? ", " : "", args[k], _PyOpcode_num_popped(op, args[k]),
                   _PyOpcode_num_pushed(op, args[k]));
        }
        printf("]");
    }
    printf("\n}\n");
    return 0;
}
