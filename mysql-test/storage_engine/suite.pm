package My::Suite::Storage_engine_rust;
@ISA = qw(My::Suite);

# The RUST plugin honestly declares itself gamma; a release server is stable and
# logs that once at every start-up. mtr's own suppression list covers it inside a
# test but not in its check of the error log at server shutdown, which then fails
# the run (and, after a restart such as trx/xa_recovery's, made mtr die of SIGPIPE).
# Same suppression as mysql-test/rust/suite.pm.
push @::global_suppressions,
  (qr/Plugin 'RUST' is of maturity level .* while the server is .*/);

bless { };
