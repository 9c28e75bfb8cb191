package My::Suite::Storage_engine_rust_btree;
@ISA = qw(My::Suite);

# The RUST plugin honestly declares itself gamma; a release server is stable and
# logs that once at every start-up. mtr's own suppression list covers it inside a
# test but not in its check of the error log at server shutdown, which then fails
# the run. Same suppression as mysql-test/storage_engine/suite.pm (the CSV overlay).
push @::global_suppressions,
  (qr/Plugin 'RUST' is of maturity level .* while the server is .*/);

# repair_table replaces t1's files with empty ones on purpose; the engine then logs,
# rightly, that it cannot open the table. Only that exact message (an empty file) is
# suppressed, so any other damage in any test still fails the error-log check.
push @::global_suppressions,
  (qr/RUST: cannot open \.\/test\/t1: \.\/test\/t1\.rbt page 0: beyond the end of the file \(0 pages\)/);

bless { };
