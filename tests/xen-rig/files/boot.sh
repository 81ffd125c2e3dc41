#!/bin/bash
# Smallest command list: start the domU, watch it tick, destroy it.
set -x
xl info | grep -E 'xen_version|total_memory|free_memory'
xl create "$IN/domu.cfg"
sleep 12
xl list
cat /var/log/xen/console/guest-rigu.log
xl destroy rigu
