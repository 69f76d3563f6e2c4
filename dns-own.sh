#!/bin/sh
# unshare -m ./dns-own.sh HOSTSFILE : a hostile name-resolution result, without touching the real /etc/hosts
mount --bind "$1" /etc/hosts
getent ahosts api.example.net | head -1
/tmp/redteam-egress/run.sh /tmp/redteam-egress/t2 rt/connect '{"host":"api.example.net","port":18082}'; echo rc=$?
