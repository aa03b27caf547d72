#!/bin/sh
# embed.sh SYMBOL INPUT OUTPUT: an assembler file carrying INPUT's bytes between
# SYMBOL_start and SYMBOL_end, and a NUL after them, so that a text file is also
# a C string. The checksum line changes the file whenever INPUT does, so the
# object is rebuilt (compiler dependency files omit .incbin inputs).
set -eu
sym=$1
in=$(readlink -f "$2")
sum=$(sha256sum "$in" | cut -c1-64)
cat >"$3" <<ASM
/* $sum */
	.section .rodata
	.balign 16
	.global ${sym}_start
	.global ${sym}_end
${sym}_start:
	.incbin "$in"
${sym}_end:
	.byte 0
	.section .note.GNU-stack,"",@progbits
ASM
