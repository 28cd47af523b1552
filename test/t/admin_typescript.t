#!/usr/bin/env bash
# ipai.typescript_types() against the committed declarations
# (packages/saas-types/src/ipai.d.ts): any schema change that alters the
# public types fails here until the file is regenerated, so the types the
# Edge layer and the web client use never drift from the database.  The
# file must also type-check (deno check) with a few uses of its aliases.
#
# Regenerate after a deliberate schema change (then review the diff):
#   IPAI_UPDATE_TYPES=1 IPAI_ONLY=admin_typescript test/run_all.sh
# or, on any database with the extension and its schema installed:
#   psql -X -A -t -c 'SELECT ipai.typescript_types()' -o packages/saas-types/src/ipai.d.ts
set -uo pipefail
ref="$IPAI_SRC/packages/saas-types/src/ipai.d.ts"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..5"

if psql -X -A -t -v ON_ERROR_STOP=1 -c 'SELECT ipai.typescript_types()' -o "$tmp/ipai.d.ts" 2>"$tmp/err"; then
	echo "ok 1 - ipai.typescript_types() runs"
else
	echo "not ok 1 - ipai.typescript_types() runs"
	sed 's/^/# /' "$tmp/err"
fi

if [ "${IPAI_UPDATE_TYPES:-0}" = 1 ]; then
	cp "$tmp/ipai.d.ts" "$ref"
	echo "# regenerated $ref"
fi
if diff -u "$ref" "$tmp/ipai.d.ts" >"$tmp/diff"; then
	echo "ok 2 - the generated declarations equal packages/saas-types/src/ipai.d.ts"
else
	echo "not ok 2 - the generated declarations equal packages/saas-types/src/ipai.d.ts"
	echo "# the schema changed: review and regenerate (see the header of test/t/admin_typescript.t)"
	head -60 "$tmp/diff" | sed 's/^/# /'
fi

# the output is stable: a second call gives the same text
if psql -X -A -t -c 'SELECT ipai.typescript_types() = ipai.typescript_types()' | grep -qx t; then
	echo "ok 3 - the output is deterministic"
else
	echo "not ok 3 - the output is deterministic"
fi

# it type-checks, and the aliases describe what the database returns
cp "$tmp/ipai.d.ts" "$tmp/types.ts"
cat >>"$tmp/types.ts" <<'TS'

// uses, checked by the compiler
const org: Row<"organizations"> = {
  id: "00000000-0000-4000-8000-000000000000", name: "Acme", billing_email: null,
  timezone: "UTC", plan_id: "free", created_by: null, created_at: "", updated_at: "",
};
const role: Enum<"org_role"> = "editor";
const invite: Args<"invite_member"> = { org_id: org.id, email: "a@example.com", role };
const dash: Row<"org_dashboard"> | null = null;
const queue: Row<"cms_approval_queue">["diff_to_version"] = 3;
const ins: Insert<"org_invitations"> = { org_id: org.id, email: "a@example.com", token_hash: "\\x00" };
console.log(org, role, invite, dash, queue, ins);
TS
deno="$IPAI_SRC/test/node_modules/.bin/deno"
if [ -x "$deno" ] && (cd "$tmp" && DENO_NO_UPDATE_CHECK=1 "$deno" check --quiet types.ts) >"$tmp/check" 2>&1; then
	echo "ok 4 - the declarations type-check (deno check)"
else
	echo "not ok 4 - the declarations type-check (deno check)"
	head -40 "$tmp/check" | sed 's/^/# /'
fi

# and the compiler notices a wrong type (the check above can fail)
cp "$tmp/ipai.d.ts" "$tmp/bad.ts"
echo 'const bad: Args<"invite_member"> = { org_id: 42, email: "a@example.com" }; console.log(bad);' >>"$tmp/bad.ts"
if [ -x "$deno" ] && ! (cd "$tmp" && DENO_NO_UPDATE_CHECK=1 "$deno" check --quiet bad.ts) >/dev/null 2>&1; then
	echo "ok 5 - a wrongly typed use is refused by the compiler"
else
	echo "not ok 5 - a wrongly typed use is refused by the compiler"
fi
