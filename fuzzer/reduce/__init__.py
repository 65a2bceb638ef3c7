"""Reduction: minimization, reproduction reliability, C/syzkaller/program exports, crashes/.

`minimize` (pure) shrinks a program under a yes/no predicate; `repro` runs
programs on the kernel (the predicate, and reliability over N runs); `export`,
`csource` and `syz` turn a `Finding` (finding.py) into files people can run
elsewhere. The C reproducer is assembled by `csource` from the template files
in c/, which `cparts` loads and fills and `cchecks` fills with the model's
expectations for the divergence's kind.
"""
