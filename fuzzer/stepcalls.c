/*
 * fuzzer._stepcalls: the system calls of a checked step, made from C.
 *
 * A checked step is one resume of the process that makes the call, one wait for
 * its stop, and a snapshot of /proc/PID/{smaps,status,pagemap} (fuzzer/check).
 * The kernel's part of that is the ceiling (fuzzer/executor/ceiling.c); what
 * Python adds around each system call (argument conversion, a buffer view per
 * read, a tuple per pagemap read) is what this module takes away. Each function
 * does exactly what its Python twin does (fuzzer/trace/ptrace_calls.py,
 * fuzzer/observe/proc.py), which it replaces where it is built; the twins stay
 * as the readable version and the fallback, and tests/test_stepcalls.py runs
 * both on the same processes.
 *
 * Built by `python -m fuzzer.executor` (make setup) beside this file.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define PTRACE_EVENT_SECCOMP_ 7

static char *buf;  /* one buffer for every read, grown as a file needs */
static size_t cap;

/* buf at least size bytes long (64 KiB at first): 0, or -1 with errno set. */
static int grow(size_t size)
{
	if (size < 1 << 16)
		size = 1 << 16;
	if (size <= cap)
		return 0;
	char *more = realloc(buf, size);

	if (!more) {
		errno = ENOMEM;
		return -1;
	}
	buf = more;
	cap = size;
	return 0;
}

/* The whole file, read from offset 0 with pread at explicit offsets (seq_file
 * regenerates it at offset 0 and goes on where the last read ended) into buf:
 * its length, or -1 with errno set. */
static Py_ssize_t read_whole(int fd)
{
	size_t got = 0;

	for (;;) {
		if (got == cap && grow(2 * cap) < 0)
			return -1;
		ssize_t n = pread(fd, buf + got, cap - got, (off_t)got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return (Py_ssize_t)got;
		got += (size_t)n;
	}
}

/* read_file(fd) -> bytes: the whole file. */
static PyObject *read_file(PyObject *Py_UNUSED(self), PyObject *arg)
{
	int fd = (int)PyLong_AsLong(arg);

	if (fd == -1 && PyErr_Occurred())
		return NULL;
	Py_ssize_t n = read_whole(fd);

	if (n < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	return PyBytes_FromStringAndSize(buf, n);
}

/* read_line(fd, prefix) -> str: the file's line that starts with prefix, without
 * its newline; the whole text where no line does. */
static PyObject *read_line(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
	const char *prefix;
	Py_ssize_t plen;
	int fd;

	if (nargs != 2) {
		PyErr_SetString(PyExc_TypeError, "read_line(fd, prefix)");
		return NULL;
	}
	fd = (int)PyLong_AsLong(args[0]);
	if (fd == -1 && PyErr_Occurred())
		return NULL;
	if (PyBytes_AsStringAndSize(args[1], (char **)&prefix, &plen) < 0)
		return NULL;
	Py_ssize_t n = read_whole(fd);

	if (n < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	for (Py_ssize_t at = 0; at + plen <= n;) {
		const char *end = memchr(buf + at, '\n', (size_t)(n - at));
		Py_ssize_t stop = end ? end - buf : n;

		if (!memcmp(buf + at, prefix, (size_t)plen))
			return PyUnicode_DecodeUTF8(buf + at, stop - at, NULL);
		at = stop + 1;
	}
	return PyUnicode_DecodeUTF8(buf, n, NULL);
}

/* read_words(fd, offset, count) -> tuple[int, ...]: count little-endian 64-bit words
 * read at offset in one pread (a pagemap); OSError (EIO) if fewer are read. */
static PyObject *read_words(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
	long long offset;
	Py_ssize_t count;
	ssize_t n;
	int fd;

	if (nargs != 3) {
		PyErr_SetString(PyExc_TypeError, "read_words(fd, offset, count)");
		return NULL;
	}
	fd = (int)PyLong_AsLong(args[0]);
	offset = PyLong_AsLongLong(args[1]);
	count = PyLong_AsSsize_t(args[2]);
	if (PyErr_Occurred())
		return NULL;
	if (count < 0 || (size_t)count > SIZE_MAX / 16) {
		PyErr_SetString(PyExc_ValueError, "read_words: a negative or huge count");
		return NULL;
	}
	if (grow((size_t)count * 8) < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	do
		n = pread(fd, buf, (size_t)count * 8, (off_t)offset);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	if (n != count * 8) {
		errno = EIO;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	PyObject *out = PyTuple_New(count);

	if (!out)
		return NULL;
	for (Py_ssize_t i = 0; i < count; i++) {
		uint64_t word;

		memcpy(&word, buf + 8 * i, 8);
		PyObject *w = PyLong_FromUnsignedLongLong(word);

		if (!w) {
			Py_DECREF(out);
			return NULL;
		}
		PyTuple_SET_ITEM(out, i, w);
	}
	return out;
}

/* cont_wait(pid, signo, offset) -> (status, word): PTRACE_CONT the stopped tracee
 * with signo, wait for its next stop or end (__WALL), and where that is a seccomp
 * event stop (the executor's marker) read the word at offset in its struct user.
 * A wait a signal interrupts runs the Python handlers: one that raises ends it
 * (alarm.py's budget), else the wait goes on. A ptrace request that fails gives
 * (-errno, request) (the caller raises python-ptrace's PtraceError); a wait that
 * fails raises OSError. */
static PyObject *cont_wait(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
	long pid, signo, offset, word = 0;
	int status, got;

	if (nargs != 3) {
		PyErr_SetString(PyExc_TypeError, "cont_wait(pid, signo, offset)");
		return NULL;
	}
	pid = PyLong_AsLong(args[0]);
	signo = PyLong_AsLong(args[1]);
	offset = PyLong_AsLong(args[2]);
	if (PyErr_Occurred())
		return NULL;
	if (ptrace(PTRACE_CONT, (pid_t)pid, NULL, (void *)signo) == -1)
		return Py_BuildValue("(ii)", -errno, PTRACE_CONT);
	for (;;) {
		Py_BEGIN_ALLOW_THREADS
		got = waitpid((pid_t)pid, &status, __WALL);
		Py_END_ALLOW_THREADS
		if (got >= 0)
			break;
		if (errno != EINTR)
			return PyErr_SetFromErrno(PyExc_OSError);
		if (PyErr_CheckSignals() < 0)
			return NULL;
	}
	if (WIFSTOPPED(status) && status >> 16 == PTRACE_EVENT_SECCOMP_) {
		errno = 0;
		word = ptrace(PTRACE_PEEKUSER, (pid_t)pid, (void *)offset, NULL);
		if (word == -1 && errno)
			return Py_BuildValue("(ii)", -errno, PTRACE_PEEKUSER);
	}
	return Py_BuildValue("(il)", status, word);
}

static PyMethodDef methods[] = {
	{ "read_file", read_file, METH_O, "The whole file from offset 0, as bytes." },
	{ "read_line", (PyCFunction)(void (*)(void))read_line, METH_FASTCALL,
	  "The line of the file that starts with prefix (the whole text if none does)." },
	{ "read_words", (PyCFunction)(void (*)(void))read_words, METH_FASTCALL,
	  "count 64-bit words read at offset in one pread." },
	{ "cont_wait", (PyCFunction)(void (*)(void))cont_wait, METH_FASTCALL,
	  "PTRACE_CONT, wait, and the marker's word: (status, word)." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "_stepcalls",
	"The system calls of a checked step, made from C (fuzzer/stepcalls.c).", -1, methods,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__stepcalls(void)
{
	return PyModule_Create(&module);
}
