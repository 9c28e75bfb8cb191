package My::Suite::Engines_iuds_rust;
@ISA = qw(My::Suite);

# The server's engines/iuds suite with RUST (its default layout, BTREE) as the default
# storage engine. The parent suite's combinations (innodb, myisam) each set their own
# default engine; ours (combinations: rust) loads InnoDB and partitioning as the
# parent's innodb combination does, and suite.opt makes RUST the default.
sub skip_combinations {(
    'combinations' => [ 'innodb', 'myisam' ],
)}

# The plugin honestly declares itself gamma; a release server is stable and logs that
# once at start-up. mtr's own list suppresses it per test but not in its shutdown check.
push @::global_suppressions,
  (qr/Plugin 'RUST' is of maturity level .* while the server is .*/);

bless { };
