#!/usr/bin/perl
# pgxn_meta.pl FILE — checks a META.json against the PGXN Meta Spec 1.0.x
# (https://pgxn.org/spec/): the required keys (name, version, abstract,
# maintainer, license, provides, meta-spec), the type and format of every
# key the spec defines (terms, semantic versions, version ranges, license
# identifiers, prereq phases and relationships, resources), and no other
# keys than the spec's and custom "x_" ones.  Prints one line per problem
# and exits 1 when there is any, 0 otherwise.
use strict;
use warnings;
use JSON::PP;

my $file = shift or die "usage: $0 META.json\n";
open my $fh, '<:raw', $file or die "$file: $!\n";
my $text = do { local $/; <$fh> };
close $fh;

my @problems;
sub problem { push @problems, join '', @_ }

my $meta = eval { JSON::PP->new->utf8->decode($text) };
if (!defined $meta) {
	print "$file: not JSON: $@";
	exit 1;
}

# a semantic version (semver.org 2.0.0)
my $ident  = qr/(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)/;
my $semver = qr/(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:-$ident(?:\.$ident)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?/;
my %licenses = map { $_ => 1 } qw(
	agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2 bsd freebsd gfdl_1_2
	gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0 mozilla_1_1
	openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source restricted
	unrestricted unknown);

sub is_string { my $v = shift; defined $v && !ref $v && !JSON::PP::is_bool($v) }
sub is_object { ref $_[0] eq 'HASH' }
sub is_array  { ref $_[0] eq 'ARRAY' }
sub custom    { $_[0] =~ /^x_./i }

sub check_string {
	my ($v, $where) = @_;
	problem("$where: must be a non-empty string") unless is_string($v) && length $v;
}

# a Term: two or more characters, no slash, backslash, space or control
sub check_term {
	my ($v, $where) = @_;
	problem("$where: must be a term (2+ characters, no / \\ space or control)")
		unless is_string($v) && $v =~ /^[^\/\\\s\p{Cc}]{2,}$/;
}

sub check_version {
	my ($v, $where) = @_;
	problem("$where: \"" . (is_string($v) ? $v : 'non-string') . "\" is not a semantic version (X.Y.Z)")
		unless is_string($v) && $v =~ /^$semver$/;
}

# a Version Range: 0, or comma-separated [op] semver
sub check_range {
	my ($v, $where) = @_;
	return if defined $v && !ref $v && $v =~ /^0$/;
	my $ok = is_string($v);
	if ($ok) {
		for my $part (split /\s*,\s*/, $v, -1) {
			$ok = 0 unless $part =~ /^(?:(?:[=!]=|[<>]=?)\s*)?$semver$/;
		}
	}
	problem("$where: \"" . (is_string($v) ? $v : 'non-string') . "\" is not a version range") unless $ok;
}

sub check_path {
	my ($v, $where) = @_;
	problem("$where: must be a relative Unix path")
		unless is_string($v) && length $v >= 2 && $v !~ m{^/} && $v !~ /\\/ && $v !~ m{(^|/)\.\.(/|$)};
}

sub check_uri {
	my ($v, $where) = @_;
	problem("$where: must be a URI") unless is_string($v) && $v =~ /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;
}

sub only_keys {
	my ($obj, $where, @allowed) = @_;
	my %ok = map { $_ => 1 } @allowed;
	for my $k (sort keys %$obj) {
		problem("$where: unknown key \"$k\" (custom keys start with x_)") unless $ok{$k} || custom($k);
	}
}

sub check_strings_array {
	my ($v, $where, $re) = @_;
	if (!is_array($v) || !@$v) { problem("$where: must be a non-empty array"); return; }
	my %seen;
	for my $s (@$v) {
		if (!is_string($s) || ($re && $s !~ $re) || !length $s) { problem("$where: invalid entry"); next; }
		problem("$where: \"$s\" appears twice") if $seen{$s}++;
	}
}

# the distribution
if (!is_object($meta)) {
	print "$file: the document must be a JSON object\n";
	exit 1;
}
for my $k (qw(name version abstract maintainer license provides meta-spec)) {
	problem("missing required key \"$k\"") unless exists $meta->{$k};
}
only_keys($meta, 'top level', qw(name version abstract maintainer license provides meta-spec
	description generated_by tags no_index prereqs release_status resources));

check_term($meta->{name}, 'name') if exists $meta->{name};
check_version($meta->{version}, 'version') if exists $meta->{version};
check_string($meta->{abstract}, 'abstract') if exists $meta->{abstract};
for my $k (qw(description generated_by)) {
	check_string($meta->{$k}, $k) if exists $meta->{$k};
}

if (exists $meta->{maintainer}) {
	my $m = $meta->{maintainer};
	if (is_array($m)) { check_strings_array($m, 'maintainer') }
	else { check_string($m, 'maintainer') }
}

if (exists $meta->{license}) {
	my $l = $meta->{license};
	if (is_string($l)) {
		problem("license: \"$l\" is not a license identifier of the spec") unless $licenses{$l};
	} elsif (is_array($l)) {
		check_strings_array($l, 'license');
		for (grep { is_string($_) } @$l) { problem("license: \"$_\" is not a license identifier of the spec") unless $licenses{$_} }
	} elsif (is_object($l) && %$l) {
		check_uri($l->{$_}, "license \"$_\"") for sort keys %$l;
	} else {
		problem('license: must be an identifier, an array of them, or an object of name => URI');
	}
}

if (exists $meta->{provides}) {
	my $p = $meta->{provides};
	if (!is_object($p) || !%$p) {
		problem('provides: must be an object naming at least one extension');
	} else {
		for my $ext (sort keys %$p) {
			my $e = $p->{$ext};
			check_term($ext, "provides \"$ext\"");
			if (!is_object($e)) { problem("provides \"$ext\": must be an object"); next; }
			problem("provides \"$ext\": missing \"file\"") unless exists $e->{file};
			problem("provides \"$ext\": missing \"version\"") unless exists $e->{version};
			only_keys($e, "provides \"$ext\"", qw(file version abstract docfile docpath));
			check_path($e->{file}, "provides \"$ext\" file") if exists $e->{file};
			check_version($e->{version}, "provides \"$ext\" version") if exists $e->{version};
			check_string($e->{abstract}, "provides \"$ext\" abstract") if exists $e->{abstract};
			check_path($e->{docfile}, "provides \"$ext\" docfile") if exists $e->{docfile};
		}
	}
}

if (exists $meta->{'meta-spec'}) {
	my $s = $meta->{'meta-spec'};
	if (!is_object($s)) {
		problem('meta-spec: must be an object');
	} else {
		problem('meta-spec: missing "version"') unless exists $s->{version};
		problem('meta-spec version: must be 1.0.x')
			if exists $s->{version} && !(is_string($s->{version}) && $s->{version} =~ /^1\.0\.\d+$/);
		problem('meta-spec url: must be https://pgxn.org/meta/spec.txt')
			if exists $s->{url} && !(is_string($s->{url}) && $s->{url} =~ m{^https?://pgxn\.org/meta/spec\.txt$});
		only_keys($s, 'meta-spec', qw(version url));
	}
}

if (exists $meta->{release_status}) {
	my $r = $meta->{release_status};
	problem('release_status: must be stable, testing or unstable')
		unless is_string($r) && $r =~ /^(stable|testing|unstable)$/;
}

check_strings_array($meta->{tags}, 'tags', qr/^[^\/\\\p{Cc}]{2,255}$/) if exists $meta->{tags};

if (exists $meta->{no_index}) {
	my $ni = $meta->{no_index};
	if (!is_object($ni)) { problem('no_index: must be an object') }
	else {
		only_keys($ni, 'no_index', qw(file directory));
		check_strings_array($ni->{$_}, "no_index $_") for grep { exists $ni->{$_} } qw(file directory);
	}
}

if (exists $meta->{prereqs}) {
	my $pr = $meta->{prereqs};
	if (!is_object($pr)) { problem('prereqs: must be an object') }
	else {
		only_keys($pr, 'prereqs', qw(configure build test runtime develop));
		for my $phase (grep { !custom($_) } sort keys %$pr) {
			my $ph = $pr->{$phase};
			if (!is_object($ph)) { problem("prereqs $phase: must be an object"); next; }
			only_keys($ph, "prereqs $phase", qw(requires recommends suggests conflicts));
			my @rels = grep { !custom($_) } keys %$ph;
			problem("prereqs $phase: names no relationship (requires, recommends, suggests, conflicts)") unless @rels;
			for my $rel (sort @rels) {
				my $r = $ph->{$rel};
				if (!is_object($r) || !%$r) { problem("prereqs $phase $rel: must be a non-empty object"); next; }
				for my $name (sort keys %$r) {
					check_term($name, "prereqs $phase $rel \"$name\"");
					check_range($r->{$name}, "prereqs $phase $rel \"$name\"");
				}
			}
		}
	}
}

if (exists $meta->{resources}) {
	my $rs = $meta->{resources};
	if (!is_object($rs)) { problem('resources: must be an object') }
	else {
		only_keys($rs, 'resources', qw(homepage bugtracker repository));
		problem('resources: names none of homepage, bugtracker, repository')
			unless grep { exists $rs->{$_} } qw(homepage bugtracker repository);
		check_uri($rs->{homepage}, 'resources homepage') if exists $rs->{homepage};
		for my $k (qw(bugtracker repository)) {
			next unless exists $rs->{$k};
			my $o = $rs->{$k};
			if (!is_object($o) || !%$o) { problem("resources $k: must be a non-empty object"); next; }
			only_keys($o, "resources $k", $k eq 'bugtracker' ? qw(web mailto) : qw(url web type));
			check_uri($o->{$_}, "resources $k $_") for grep { exists $o->{$_} && $_ ne 'type' } keys %$o;
			check_string($o->{type}, "resources $k type") if exists $o->{type};
		}
	}
}

if (@problems) {
	print "$file: $_\n" for @problems;
	exit 1;
}
exit 0;
