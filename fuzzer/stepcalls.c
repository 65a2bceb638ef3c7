/*
 * fuzzer._stepcalls: the system calls of a checked step, made from C.
 *
 * A checked step is one resume of the process that makes the call, one wait for
 * its stop, and a snapshot of /proc/PID/{smaps,status,pagemap} (fuzzer/check).
 * The kernel's part of that is the ceiling (fuzzer/executor/ceiling.c); what
 * Python adds around each system call (argument conversion, a buffer view per
 * read, a tuple per pagemap read) is what this module takes away, with the
 * parse of the smaps text it reads (smaps_vmas). Each function does exactly what
 * its Python twin does (fuzzer/trace/ptrace_calls.py, fuzzer/observe/proc.py,
 * fuzzer/snapshot/parse.py's SmapsParser.parse), which it replaces where it is
 * built; the twins stay as the readable version and the fallback, and
 * tests/test_stepcalls.py and tests/test_parse_lookup.py run both on the same
 * processes.
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

/* The first line of [*from, end) that starts with key, as the number after it and its
 * spaces (Rss:, Pss:, Locked:, in kB): 0, with *from moved past that line (smaps prints
 * its fields in one order, so the next key is looked for from there), or -1 where no
 * line does, with *from left as it was. */
static int field_kb(const char **from, const char *end, const char *key, size_t klen,
		    unsigned long long *out)
{
	const char *at = *from;

	while (at < end) {
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		const char *stop = nl ? nl : end;

		if ((size_t)(stop - at) > klen && !memcmp(at, key, klen) && at[klen] == ' ') {
			const char *p = at + klen;
			unsigned long long v = 0;

			while (p < stop && *p == ' ')
				p++;
			if (p == stop || *p < '0' || *p > '9')
				return -1;
			while (p < stop && *p >= '0' && *p <= '9')
				v = v * 10 + (unsigned long long)(*p++ - '0');
			if (stop - p != 3 || memcmp(p, " kB", 3))
				return -1;
			*out = v;
			*from = stop;
			return 0;
		}
		at = stop + 1;
	}
	return -1;
}

/* A hexadecimal or decimal number at *p, which is moved past it: 0, or -1 if none. */
static int number(const char **p, const char *end, int base, unsigned long long *out)
{
	unsigned long long v = 0;
	const char *q = *p;

	for (; q < end; q++) {
		int d = *q >= '0' && *q <= '9' ? *q - '0' :
			base == 16 && *q >= 'a' && *q <= 'f' ? *q - 'a' + 10 : -1;

		if (d < 0)
			break;
		v = v * (unsigned long long)base + (unsigned long long)d;
	}
	if (q == *p)
		return -1;
	*p = q;
	*out = v;
	return 0;
}

/* One VMA's record [at, end), from its header line to its VmFlags line (no newline
 * after it), as make(start, end, perms, inode, name, rss_kb, pss_kb, locked_kb, flags,
 * anon_huge_kb, file_pmd_kb), the Vma parse.py's vma_of_fields builds (the PMD-mapped
 * sizes 0 where the kernel does not print them); NULL with ValueError where it is not
 * one. */
static PyObject *one_vma(const char *at, const char *end, PyObject *make)
{
	unsigned long long start, stop, inode, rss, pss, locked;
	unsigned long long anon_huge = 0, shmem_pmd = 0, file_pmd = 0;
	const char *p = at, *nl = memchr(at, '\n', (size_t)(end - at)), *flags;

	if (!nl)
		goto bad;
	if (number(&p, nl, 16, &start) || p == nl || *p++ != '-' || number(&p, nl, 16, &stop) ||
	    nl - p < 6 || *p++ != ' ')
		goto bad;
	const char *perms = p;

	p += 4;
	if (*p++ != ' ')
		goto bad;
	for (int field = 0; field < 2; field++) {  /* offset, device */
		const char *sp = memchr(p, ' ', (size_t)(nl - p));

		if (!sp || sp == p)
			goto bad;
		p = sp + 1;
	}
	if (number(&p, nl, 10, &inode))
		goto bad;
	while (p < nl && *p == ' ')
		p++;
	const char *body = nl + 1;

	/* in smaps' order; the PMD-mapped sizes may be missing (before 5.4) */
	if (field_kb(&body, end, "Rss:", 4, &rss) || field_kb(&body, end, "Pss:", 4, &pss))
		goto bad;
	field_kb(&body, end, "AnonHugePages:", 14, &anon_huge);
	field_kb(&body, end, "ShmemPmdMapped:", 15, &shmem_pmd);
	field_kb(&body, end, "FilePmdMapped:", 14, &file_pmd);
	if (field_kb(&body, end, "Locked:", 7, &locked))
		goto bad;
	flags = end;
	while (flags > nl && flags[-1] != '\n')
		flags--;
	if (end - flags < 9 || memcmp(flags, "VmFlags: ", 9))
		goto bad;
	flags += 9;
	return PyObject_CallFunction(make, "KKs#Ks#KKKs#KK", start, stop, perms, (Py_ssize_t)4,
				     inode, p, (Py_ssize_t)(nl - p), rss, pss, locked, flags,
				     (Py_ssize_t)(end - flags), anon_huge, shmem_pmd + file_pmd);
bad:
	PyErr_SetString(PyExc_ValueError, "smaps: a VMA lacks Rss, Pss, Locked or VmFlags");
	return NULL;
}

#define MAX_VMAS 4096

/* smaps_vmas(text, last_text, last_bounds, last_vmas, make) -> (vmas, bounds): every
 * VMA of an smaps text, what parse.py's SmapsParser.parse gives for it. bounds[k] is
 * where VMA k's record starts (bounds[-1]: where the last one ends); a record that
 * is byte for byte the one at the same place of the last text, counted from the
 * start or from the end, is that text's Vma, and any other is parsed here and built
 * by make. */
static PyObject *smaps_vmas(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
	static Py_ssize_t bounds[MAX_VMAS + 1];
	const char *text, *last;
	Py_ssize_t len, last_len, n = 0, last_n;
	PyObject *last_bounds, *last_vmas, *make, *vmas = NULL, *out_bounds = NULL;

	if (nargs != 5 || !PyTuple_Check(args[2]) || !PyTuple_Check(args[3])) {
		PyErr_SetString(PyExc_TypeError,
				"smaps_vmas(text, last_text, last_bounds: tuple, last_vmas: tuple, make)");
		return NULL;
	}
	if (PyBytes_AsStringAndSize(args[0], (char **)&text, &len) < 0 ||
	    PyBytes_AsStringAndSize(args[1], (char **)&last, &last_len) < 0)
		return NULL;
	last_bounds = args[2];
	last_vmas = args[3];
	make = args[4];
	last_n = PyTuple_GET_SIZE(last_vmas);
	if (last_n && PyTuple_GET_SIZE(last_bounds) != last_n + 1) {
		PyErr_SetString(PyExc_ValueError, "smaps_vmas: last_bounds and last_vmas disagree");
		return NULL;
	}
	/* "\nVmFlags: " ends each record's body; its line ends the record */
	bounds[0] = 0;
	for (const char *at = text, *end = text + len;;) {
		const char *hit = memmem(at, (size_t)(end - at), "\nVmFlags: ", 10);

		if (!hit)
			break;
		const char *nl = memchr(hit + 1, '\n', (size_t)(end - hit - 1));
		Py_ssize_t stop = nl ? nl - text + 1 : len;

		if (n == MAX_VMAS) {
			PyErr_SetString(PyExc_ValueError, "smaps: more VMAs than smaps_vmas takes");
			return NULL;
		}
		bounds[++n] = stop;
		at = text + stop;
		if (!nl)
			break;
	}
	vmas = PyTuple_New(n);
	out_bounds = PyTuple_New(n + 1);
	if (!vmas || !out_bounds)
		goto fail;
	for (Py_ssize_t k = 0; k <= n; k++) {
		PyObject *b = PyLong_FromSsize_t(bounds[k]);

		if (!b)
			goto fail;
		PyTuple_SET_ITEM(out_bounds, k, b);
	}
	for (Py_ssize_t k = 0; k < n; k++) {
		Py_ssize_t from = bounds[k], to = bounds[k + 1];
		PyObject *vma = NULL;
		Py_ssize_t places[2] = { k, k - n + last_n };

		for (int c = 0; c < 2 && !vma; c++) {
			Py_ssize_t j = places[c];

			if (j < 0 || j >= last_n)
				continue;
			Py_ssize_t lf = PyLong_AsSsize_t(PyTuple_GET_ITEM(last_bounds, j));
			Py_ssize_t lt = PyLong_AsSsize_t(PyTuple_GET_ITEM(last_bounds, j + 1));

			if (PyErr_Occurred())
				goto fail;
			if (lt - lf == to - from && lt <= last_len && lf >= 0 &&
			    !memcmp(last + lf, text + from, (size_t)(to - from))) {
				vma = PyTuple_GET_ITEM(last_vmas, j);
				Py_INCREF(vma);
			}
		}
		if (!vma) {
			Py_ssize_t body = to;  /* without the flags line's newline */

			if (body > from && text[body - 1] == '\n')
				body--;
			vma = one_vma(text + from, text + body, make);
			if (!vma)
				goto fail;
		}
		PyTuple_SET_ITEM(vmas, k, vma);
	}
	return Py_BuildValue("(NN)", vmas, out_bounds);
fail:
	Py_XDECREF(vmas);
	Py_XDECREF(out_bounds);
	return NULL;
}

static PyMethodDef methods[] = {
	{ "read_file", read_file, METH_O, "The whole file from offset 0, as bytes." },
	{ "read_line", (PyCFunction)(void (*)(void))read_line, METH_FASTCALL,
	  "The line of the file that starts with prefix (the whole text if none does)." },
	{ "read_words", (PyCFunction)(void (*)(void))read_words, METH_FASTCALL,
	  "count 64-bit words read at offset in one pread." },
	{ "smaps_vmas", (PyCFunction)(void (*)(void))smaps_vmas, METH_FASTCALL,
	  "Every VMA of an smaps text, reusing the last text's unchanged ones: (vmas, bounds)." },
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
