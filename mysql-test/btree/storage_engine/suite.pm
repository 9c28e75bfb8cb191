package My::Suite::Storage_engine_rust_btree;
@ISA = qw(My::Suite);

# The RUST plugin honestly declares itself gamma; a release server is stable and
# logs that once at every start-up. mtr's own suppression list covers it inside a
# test but not in its check of the error log at server shutdown, which then fails
# the run. Same suppression as mysql-test/storage_engine/suite.pm (the CSV overlay).
push @::global_suppressions,
  (qr/Plugin 'RUST' is of maturity level .* while the server is .*/);

bless { };
