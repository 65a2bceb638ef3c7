"""Reduction: minimization, reproduction reliability, C/syzkaller/program exports, crashes/.

`minimize` (pure) shrinks a program under a yes/no predicate; `repro` runs
programs on the kernel (the predicate, and reliability over N runs); `export`,
`csource` and `syz` turn a finding into files people can run elsewhere.
"""
