"""Drop copy for clearing members: every execution of the accounts a member clears, copied
to its read-only FIX session, recoverable by resend and by a whole-day replay from the
journal. Runs in its own process beside the venue (drop_copy/process.py); README.md
"Drop copy for clearing members" and fix_specs/DROP_COPY.md describe it."""
