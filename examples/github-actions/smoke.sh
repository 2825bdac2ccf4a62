#!/usr/bin/env bash
# The deployed API answers: `smoke.sh STACK URL`, run by deploy.yml after an apply. Exits 1 at the first
# wrong answer, saying what it expected and what it got (the job then rolls back).
#   pedidos: GET /pedidos lists orders (200, {"items": [...]}), an unknown order is 404.
#   hello:   GET /hello?name=smoke greets, POST /echo returns the body, GET /health is ok.
set -euo pipefail
stack=${1:?usage: smoke.sh STACK URL}
url=${2:?usage: smoke.sh STACK URL}
url=${url%/}

# call METHOD PATH WANT_STATUS WANT_IN_BODY [BODY]
call() {
  local method=$1 path=$2 want=$3 needle=$4 body=${5:-} out status
  out=$(mktemp)
  # A new deployment may take a few seconds to answer everywhere: retry connection errors and 5xx briefly.
  status=$(curl -sS -o "$out" -w '%{http_code}' --retry 5 --retry-all-errors --retry-delay 2 --max-time 20 \
    -X "$method" -H 'content-type: application/json' ${body:+--data "$body"} "$url$path") || status=000
  if [[ $status != "$want" ]] || ! grep -q -- "$needle" "$out"; then
    echo "smoke: $method $path: expected $want with '$needle', got $status: $(head -c 500 "$out")" >&2
    rm -f "$out"
    exit 1
  fi
  echo "ok  $method $path -> $status"
  rm -f "$out"
}

case $stack in
  pedidos)
    call GET /pedidos 200 '"items"'
    call GET /pedidos/smoke-does-not-exist 404 'error'
    ;;
  hello)
    call GET '/hello?name=smoke' 200 'Hello, smoke!'
    call POST /echo 200 '"smoke":true' '{"smoke":true}'
    call GET /health 200 'ok'
    ;;
  *)
    echo "smoke: no smoke test for stack $stack" >&2
    exit 1
    ;;
esac
