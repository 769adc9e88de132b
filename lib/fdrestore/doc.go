// Package fdrestore is the engine behind the fdrestore applet
// (spec/fdrestore.md). This first part is pure code with no side effects:
//
//   - [ParseSource] and [ParseFlag] read the `-f [N=]SOURCE` grammar of
//     section 2 into a typed [Source];
//   - [NewFlagsPlan] turns the ordered `-f` flags, `--name`, `--listen-fds`
//     and `-C` into a [Plan] (section 6.1): final numbers, shared objects,
//     master opening order, LISTEN_* environment and the fds to close;
//   - [Place] computes the dup3/close sequence a stage process runs to move
//     its masters onto their targets (section 6.5), whatever numbers the
//     masters arrived on.
//
// Every error of the parsers and the plan is an [exitcode.Error] with code
// 100 (usage): one line naming the bad flag, fd or part, as in section 10.
// [Place] only fails on inconsistent input, a bug (101).
package fdrestore
