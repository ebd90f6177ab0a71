#!/usr/bin/env bash
# CI check of the Terraform module (terraform/) and its examples:
#   1. terraform fmt -check -recursive terraform
#   2. terraform init (offline, -plugin-dir) + validate for the module, every example and the test root
#   3. terraform apply of terraform/tests/moto against a moto server started here (killed on exit), once per
#      admin credential mode (admin_secret_key with credential delivery, admin_secret_arn, admin_iam_user)
#   4. checks of what was deployed, through the AWS API (boto3 -> moto), not through Terraform:
#      table keys/GSIs/TTL, the EventBridge schedule equals eventbridge/reaper-schedule.json, function
#      runtime/handler/env, IAM actions exactly as expected (no Scan, no wildcards), alarms, bucket settings,
#      the bucket policy's secrets/ Deny as an exact statement (moto does not evaluate IAM conditions, so the
#      document is checked, not its effect), the lifecycle rule expiring old secret versions, and the
#      lifecycle events: the table's stream, the pipes as eventbridge/lifecycle-pipes.json says (moto stores
#      pipes but does not run them; crates/reaper/tests/events.rs runs their filters and templates) and the
#      pipes' role
#   5. terraform destroy
# Ends with `terraform: N passed, M failed`; exits non-zero on any failure.
#
# moto stores the Lambda zips but never runs them: when scripts/package.sh has not been run, tiny placeholder
# zips are used. Environment: TF_PLUGIN_DIR (default /opt/tf-plugins; empty = download providers).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)

if ! command -v terraform >/dev/null 2>&1; then
  echo "################################################################################" >&2
  echo "##                                                                            ##" >&2
  echo "##   TERRAFORM NOT INSTALLED — TERRAFORM CHECKS DID NOT RUN                   ##" >&2
  echo "##                                                                            ##" >&2
  echo "################################################################################" >&2
  echo "terraform: 0 passed, 1 failed"
  exit 1
fi

PLUGIN_DIR=${TF_PLUGIN_DIR-/opt/tf-plugins}
WORK=$(mktemp -d)
MOTO_PID=""
created_locks=()

cleanup() {
  if [[ -n "$MOTO_PID" ]]; then kill "$MOTO_PID" 2>/dev/null || true; fi
  for lock in "${created_locks[@]}"; do rm -f "$lock"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
export TF_CLI_CONFIG_FILE="$WORK/terraformrc"
: >"$TF_CLI_CONFIG_FILE"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# run <name> <command...>: one check; its output is shown only when it fails.
run() {
  local name=$1 log
  shift
  log="$WORK/log.$((passed + failed))"
  if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name"; sed 's/^/     /' "$log"; fi
}
finish() {
  echo "(took $(($(date +%s) - START)) s)"
  echo "terraform: $passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit $?
}

echo "== terraform $(terraform version | head -1 | awk '{print $2}')"
run "fmt -check -recursive terraform" terraform fmt -check -recursive -diff terraform

init_validate() {
  local dir=$1
  export TF_DATA_DIR="$WORK/data/${dir//\//_}"
  [[ -e "$dir/.terraform.lock.hcl" ]] || created_locks+=("$ROOT/$dir/.terraform.lock.hcl")
  local args=(-backend=false -input=false -no-color)
  [[ -n "$PLUGIN_DIR" ]] && args+=(-plugin-dir="$PLUGIN_DIR")
  terraform -chdir="$dir" init "${args[@]}" && terraform -chdir="$dir" validate -no-color
}

dirs=(terraform)
shopt -s nullglob
for d in terraform/examples/*/; do dirs+=("${d%/}"); done
shopt -u nullglob
dirs+=(terraform/tests/moto)
for dir in "${dirs[@]}"; do
  run "init + validate $dir" init_validate "$dir"
done
unset TF_DATA_DIR

# --- apply against moto ----------------------------------------------------------------------------------

# The server picks a free port itself (port 0) and dies with this script: it polls its parent's pid.
python3 -u - >"$WORK/moto.out" 2>"$WORK/moto.err" <<'PY' &
import logging, os, time
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
parent = os.getppid()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("MOTO READY %d" % server.get_host_and_port()[1], flush=True)
while os.getppid() == parent:
    time.sleep(0.5)
server.stop()
PY
MOTO_PID=$!
for _ in $(seq 1 100); do
  grep -q "MOTO READY" "$WORK/moto.out" 2>/dev/null && break
  kill -0 "$MOTO_PID" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "MOTO READY" "$WORK/moto.out" 2>/dev/null; then
  fail "start moto server"
  sed 's/^/     /' "$WORK/moto.err"
  finish
fi
ENDPOINT="http://127.0.0.1:$(awk '/MOTO READY/ {print $3}' "$WORK/moto.out")"
echo "== moto at $ENDPOINT"

zip_for() {
  local built="target/lambda/$1/bootstrap.zip"
  if [[ -s "$built" ]]; then
    echo "$ROOT/$built"
  else
    python3 - "$WORK/$1.zip" <<'PY'
import sys, zipfile
info = zipfile.ZipInfo("bootstrap")
info.external_attr = 0o755 << 16
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr(info, "#!/bin/sh\necho 'placeholder: moto never runs this'\nexit 1\n")
PY
    echo "$WORK/$1.zip"
  fi
}
PROVISIONER_ZIP=$(zip_for provisioner)
REAPER_ZIP=$(zip_for reaper)
echo "== zips: $PROVISIONER_ZIP $REAPER_ZIP"

TEST_ROOT=terraform/tests/moto
export TF_DATA_DIR="$WORK/data/${TEST_ROOT//\//_}"
STATE="$WORK/terraform.tfstate"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
# One sample break-glass role (with a path, as IAM Identity Center roles have) may read secrets/ besides the
# two Lambda roles; old secret versions expire after 3 days (not the default 7, so the wiring is checked).
SECRET_READERS='["arn:aws:iam::123456789012:role/operators/jit-break-glass"]'
SECRET_NONCURRENT_DAYS=3
tfvars=(
  -var "endpoint=$ENDPOINT"
  -var "provisioner_zip=$PROVISIONER_ZIP"
  -var "reaper_zip=$REAPER_ZIP"
  -var "config_file=$ROOT/$TEST_ROOT/config.json"
  -var "secret_readers=$SECRET_READERS"
  -var "secret_noncurrent_version_days=$SECRET_NONCURRENT_DAYS"
)

# The branches the apply below does not take, planned only: VPC (ENI policy attachment, vpc_config), an
# existing bucket (nothing bucket-side created), SSE-KMS (kms:Decrypt statement).
plan_variant() {
  terraform -chdir="$TEST_ROOT" plan -no-color -input=false -lock=false -state="$WORK/variant.tfstate" \
    -out="$WORK/variant.tfplan" "${tfvars[@]}" \
    -var 'subnet_ids=["subnet-0123456789abcdef0"]' -var 'security_group_ids=["sg-0123456789abcdef0"]' \
    -var existing_config_bucket=existing-config-bucket \
    -var kms_key_arn=arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000 &&
    terraform -chdir="$TEST_ROOT" show -json "$WORK/variant.tfplan" >"$WORK/variant.json" &&
    python3 - "$WORK/variant.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
changes = {c["address"]: c for c in plan["resource_changes"] if c["change"]["actions"] == ["create"]}
m = "module.jit_access."
for fn in ("provisioner", "reaper"):
    assert m + f"aws_iam_role_policy_attachment.{fn}_vpc[0]" in changes, f"no VPC policy attachment for {fn}"
    vpc = changes[m + f"aws_lambda_function.{fn}"]["change"]["after"]["vpc_config"]
    assert vpc and vpc[0]["subnet_ids"] == ["subnet-0123456789abcdef0"], vpc
    env = changes[m + f"aws_lambda_function.{fn}"]["change"]["after"]["environment"][0]["variables"]
    assert env["CONFIG_BUCKET"] == "existing-config-bucket", env
bucket_side = [a for a in changes if a.startswith(m + "aws_s3_bucket")]
assert not bucket_side, f"an existing bucket must not be managed (policy, lifecycle): {bucket_side}"
# Its owner merges the policy statements themselves: the output exists (known only after apply: role ARNs).
out = plan["output_changes"]["module"]
assert "config_bucket_policy_json" in out["after"] or out["after_unknown"].get("config_bucket_policy_json"), out
assert m + "aws_s3_object.config[0]" in changes, "config upload into the existing bucket"
assert changes[m + "aws_dynamodb_table.grants"]["change"]["after"]["server_side_encryption"][0]["kms_key_arn"].startswith("arn:aws:kms:")
print("variant plan ok")
PY
}
run "plan variant: VPC, existing bucket, SSE-KMS" plan_variant

# secret_readers entries are compared with aws:PrincipalArn: anything but a role ARN is refused at plan time.
plan_refuses_bad_secret_reader() {
  local out
  if out=$(terraform -chdir="$TEST_ROOT" plan -no-color -input=false -lock=false -state="$WORK/refused.tfstate" \
    "${tfvars[@]}" -var 'secret_readers=["arn:aws:iam::123456789012:user/alice"]' 2>&1); then
    echo "plan accepted a user ARN in secret_readers"
    return 1
  fi
  grep -q "secret_readers must be IAM role ARNs" <<<"$out" || { echo "$out"; return 1; }
}
run "plan refuses a secret_readers entry that is not a role ARN" plan_refuses_bad_secret_reader

# Once per admin credential mode (SPEC: exactly one per database), each with the IAM statements it must add and
# nothing else: admin_secret_key (S3 only) with both kinds of credential delivery and IAM temporary users;
# admin_secret_arn; admin_iam_user.
ACCOUNT_ARN="us-east-1:123456789012"
ADMIN_SECRET="arn:aws:secretsmanager:$ACCOUNT_ARN:secret:rds!cluster-orders-AbCdEf"
ADMIN_DBUSER="arn:aws:rds-db:$ACCOUNT_ARN:dbuser:cluster-ABCDEFGHIJKLMNOP/jit_admin"
TEMP_DBUSERS="arn:aws:rds-db:$ACCOUNT_ARN:dbuser:cluster-ABCDEFGHIJKLMNOP/jit_*"
SECRETS="arn:aws:secretsmanager:$ACCOUNT_ARN:secret:jit-access/*"
PARAMETERS="arn:aws:ssm:$ACCOUNT_ARN:parameter/jit-access/*"
TAGGED='{"Null": {"aws:RequestTag/jit:requester": ["false"], "aws:RequestTag/jit:grant_id": ["false"]}}'
DELETES='{"actions": ["secretsmanager:DeleteSecret"], "resources": ["'$SECRETS'"]},
         {"actions": ["ssm:DeleteParameter"], "resources": ["'$PARAMETERS'"]}'
KEY_MODE_STATEMENTS='{"reaper": ['$DELETES'], "provisioner": ['$DELETES',
  {"actions": ["rds-db:connect"], "resources": ["'$TEMP_DBUSERS'"]},
  {"actions": ["secretsmanager:CreateSecret", "secretsmanager:TagResource"], "resources": ["'$SECRETS'"], "condition": '$TAGGED'},
  {"actions": ["secretsmanager:PutSecretValue"], "resources": ["'$SECRETS'"]},
  {"actions": ["ssm:PutParameter"], "resources": ["'$PARAMETERS'"]},
  {"actions": ["ssm:AddTagsToResource"], "resources": ["'$PARAMETERS'"], "condition": {"Null": {"aws:RequestTag/jit:requester": ["false"]}}}]}'
READ_SECRET='{"actions": ["secretsmanager:GetSecretValue"], "resources": ["'$ADMIN_SECRET'"]}'
CONNECT='{"actions": ["rds-db:connect"], "resources": ["'$ADMIN_DBUSER'"]}'

apply_and_check() {
  local mode=$1 statements=$2
  shift 2
  local apply_start destroy_start applied
  apply_start=$(date +%s)
  rm -f "$STATE"
  if terraform -chdir="$TEST_ROOT" apply -auto-approve -no-color -input=false -state="$STATE" "${tfvars[@]}" "$@" >"$WORK/apply.log" 2>&1; then
    pass "[$mode] apply $TEST_ROOT against moto ($(($(date +%s) - apply_start)) s)"
    applied=1
  else
    fail "[$mode] apply $TEST_ROOT against moto"
    sed 's/^/     /' "$WORK/apply.log" | tail -60
    applied=0
  fi

  if [[ $applied -eq 1 ]]; then
    set +e
    : >"$WORK/checks.log"
    terraform -chdir="$TEST_ROOT" output -no-color -json -state="$STATE" module >"$WORK/outputs.json" 2>"$WORK/checks.log"
    python3 "$TEST_ROOT/check_deployed.py" "$ENDPOINT" eventbridge/reaper-schedule.json jit-test \
      "$SECRET_READERS" "$SECRET_NONCURRENT_DAYS" "$WORK/outputs.json" "$statements" >>"$WORK/checks.log" 2>&1
    set -e
    while IFS= read -r line; do
      case "$line" in
        "ok "*) pass "[$mode] ${line#ok }" ;;
        "FAIL "*) fail "[$mode] ${line#FAIL }" ;;
        *) echo "     $line" ;;
      esac
    done <"$WORK/checks.log"
    grep -qE '^(ok|FAIL) ' "$WORK/checks.log" || fail "[$mode] deployed-resource checks produced no results"
  fi

  # -refresh=false: moto applies the bucket policy's TLS-only Deny without its condition, so refreshing the
  # config object (HeadObject) would be refused; the state just written is what there is to destroy.
  destroy_start=$(date +%s)
  if terraform -chdir="$TEST_ROOT" destroy -auto-approve -refresh=false -no-color -input=false -state="$STATE" "${tfvars[@]}" "$@" >"$WORK/destroy.log" 2>&1; then
    pass "[$mode] destroy $TEST_ROOT ($(($(date +%s) - destroy_start)) s)"
  else
    fail "[$mode] destroy $TEST_ROOT"
    sed 's/^/     /' "$WORK/destroy.log" | tail -40
  fi
}

apply_and_check admin_secret_key "$KEY_MODE_STATEMENTS" \
  -var 'credential_delivery=["secrets_manager","ssm"]' -var "iam_auth_db_users=[\"$TEMP_DBUSERS\"]"
apply_and_check admin_secret_arn '{"reaper": ['"$READ_SECRET"'], "provisioner": ['"$READ_SECRET"']}' \
  -var "admin_secret_arns=[\"$ADMIN_SECRET\"]"
apply_and_check admin_iam_user '{"reaper": ['"$CONNECT"'], "provisioner": ['"$CONNECT"']}' \
  -var "admin_iam_db_users=[\"$ADMIN_DBUSER\"]"

finish
