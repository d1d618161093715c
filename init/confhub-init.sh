#!/bin/sh
# placeholder until the script lands
exec "$@"
