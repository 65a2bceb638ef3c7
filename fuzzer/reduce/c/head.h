#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* mmfuzz's arena: ARENA_BASE in fuzzer/prog/program.py */
#define ARENA TPL_ARENA
#define PAGE 4096UL
#define PAGES TPL_PAGES
#define TASK_SIZE 0x7ffffffff000UL

static const char title[] = TPL_TITLE;
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching, fault_sig, fault_code;
