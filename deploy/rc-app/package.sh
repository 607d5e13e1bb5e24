#!/usr/bin/env bash
# Package the app with the Apps CLI (`rc-apps package`, @rocket.chat/apps-cli from package.json)
# into dist/<nameSlug>_<version>.zip, ready for Administration > Apps > Upload.
#
# The CLI is run on a staged copy of the app's own files, not on this folder, because it
#  - compiles every .ts file it finds (the unit tests too, whose node:test imports it cannot resolve),
#  - rewrites app.json in place (and would rewrite requiredApiVersion to package.json's engine
#    version if the two differed — keep them equal: "^X.Y.Z" in app.json for "X.Y.Z" here),
#  - and ignores every file under a path with a "dist" or "test" segment.
# No network, no prompts, nothing written outside the staging folder and dist/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
app="$(pwd)"
if [ ! -x node_modules/.bin/rc-apps ]; then
    echo "package.sh: run npm ci first (node_modules/.bin/rc-apps is missing)" >&2
    exit 1
fi
stage="$(mktemp -d "${TMPDIR:-/tmp}/rcmod-rc-app.XXXXXX")"
log="$(mktemp "${TMPDIR:-/tmp}/rcmod-rc-apps-log.XXXXXX")"  # not in the stage: the CLI would zip it
trap 'rm -rf "$stage" "$log"' EXIT
cp -R app.json package.json icon.png RcmodApp.ts src "$stage/"
ln -s "$app/node_modules" "$stage/node_modules"
zip="$(node -p 'const a = require("./app.json"); `${a.nameSlug}_${a.version}.zip`')"
if ! (cd "$stage" && "$app/node_modules/.bin/rc-apps" package </dev/null >"$log" 2>&1); then
    cat "$log" >&2
    echo "package.sh: rc-apps package failed" >&2
    exit 1
fi
mkdir -p dist
cp "$stage/dist/$zip" "dist/$zip"
echo "packaged deploy/rc-app/dist/$zip"
