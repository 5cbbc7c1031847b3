#!/usr/bin/env bash
# The Mekong edge box image: a minimal Debian bookworm with the single binary, its hardened unit,
# stable capture-card names, NTP, a read-only root, a data partition and USB enrollment at boot.
# docs/appliance.md describes the result; `make firmware` runs this as root.
#
#   firmware/build.sh [--binary dist/mekong] [--out build/firmware] [--arch amd64]
#                     [--mirror URL] [--no-kernel] [--image] [--overlay DIR]
#
# --no-kernel   a rootfs without kernel and boot loader (enough for the contents test)
# --image       also a partitioned disk image OUT/mekong-edge-ARCH.img (GPT: EFI system partition
#               with systemd-boot, root MEKONG-ROOT, data MEKONG-DATA); no loop devices needed
# --overlay     a folder copied over the rootfs last (a site's udev rules, firmware/boot-test/)
# arm64 on this amd64 machine needs qemu-user-static + binfmt-support (debootstrap --foreign,
# then the second stage inside the chroot) and an arm64 binary; not wired here, see the docs.
# ROOT_PASSWORD_HASH (a crypt(3) hash) unlocks root on the console for `mekong enroll`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
binary=$repo/dist/mekong
out=$repo/build/firmware
arch=amd64
mirror=http://deb.debian.org/debian
suite=bookworm
kernel=1
image=0
overlay=""
while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --arch) arch=$2; shift 2 ;;
        --mirror) mirror=$2; shift 2 ;;
        --no-kernel) kernel=0; shift ;;
        --image) image=1; shift ;;
        --overlay) overlay=$(realpath "$2"); shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--out DIR] [--arch amd64] [--mirror URL] [--no-kernel] [--image] [--overlay DIR]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "firmware/build.sh: run as root (debootstrap, chroot)" >&2; exit 2; }
[ -x "$binary" ] || { echo "firmware/build.sh: no executable binary at $binary (make binary)" >&2; exit 2; }
[ "$arch" = "$(dpkg --print-architecture)" ] || {
    echo "firmware/build.sh: building $arch on $(dpkg --print-architecture) needs qemu-user-static (docs/appliance.md)" >&2
    exit 2
}
mekong=${MEKONG:-$repo/.venv/bin/mekong}  # installs with the code of this tree
out=$(realpath -m "$out")
rootfs=$out/rootfs
debs=$repo/build/firmware-debs  # downloaded packages, kept for the next build
packages=systemd,systemd-sysv,udev,systemd-timesyncd,systemd-resolved,dbus,kmod,iproute2,ca-certificates,libzbar0,fonts-dejavu-core
[ "$kernel" -eq 1 ] && packages=$packages,linux-image-$arch,initramfs-tools,systemd-boot-efi

log() { echo "== $(date +%T) $*"; }

debootstrap_rootfs() {
    log "debootstrap $suite $arch"
    rm -rf "$rootfs"
    mkdir -p "$debs" "$rootfs"
    debootstrap --variant=minbase --arch="$arch" --include="$packages" \
        --cache-dir="$debs" "$suite" "$rootfs" "$mirror" > "$out/debootstrap.log"
}

in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

install_mekong() {
    log "mekong install --image"
    "$mekong" install --mode edge --image --root "$rootfs" --binary "$binary"
    # the configuration lives on the data partition (written by mekong-firstboot at boot)
    install -d "$rootfs/usr/share/mekong"
    mv "$rootfs/etc/mekong/mekong.toml" "$rootfs/usr/share/mekong/mekong.toml"
    chmod 0644 "$rootfs/usr/share/mekong/mekong.toml"
    rmdir "$rootfs/etc/mekong"
    ln -s /var/lib/mekong/config "$rootfs/etc/mekong"
}

configure() {
    log "overlay, services, read-only root"
    cp -a "$here/rootfs/." "$rootfs/"
    [ -z "$overlay" ] || cp -a "$overlay/." "$rootfs/"
    echo mekong-edge > "$rootfs/etc/hostname"
    install -d "$rootfs/boot/efi"  # a mount point: the read-only root cannot make one at boot
    ln -sf /run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
    in_root systemctl enable mekong-firstboot.service systemd-networkd.service \
        systemd-resolved.service systemd-timesyncd.service > /dev/null
    # a machine ID of its own on every box: systemd makes one at boot (kept in RAM on a ro root)
    : > "$rootfs/etc/machine-id"
    rm -f "$rootfs/var/lib/dbus/machine-id"
    if [ -n "${ROOT_PASSWORD_HASH:-}" ]; then
        in_root usermod --password "$ROOT_PASSWORD_HASH" root
    fi
    in_root apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/var/cache/*/*
}

slim() {
    log "slim: no documentation, no drivers a headless box does not use"
    printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
        'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/locale/*' \
        'path-exclude=/usr/share/info/*' > "$rootfs/etc/dpkg/dpkg.cfg.d/mekong-slim"
    find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
    rm -rf "${rootfs:?}"/usr/share/{man,locale,info}
    [ "$kernel" -eq 1 ] || return 0
    local modules
    for modules in "$rootfs"/usr/lib/modules/*/kernel; do
        # sound, graphics (the console is the firmware's frame buffer), radios, exotic fabrics;
        # drivers/media stays: the capture cards (UVC, PCIe grabbers) are there
        rm -rf "${modules:?}"/{sound,drivers/gpu,drivers/net/wireless,net/wireless} \
            "${modules:?}"/{drivers/bluetooth,net/bluetooth,drivers/infiniband,drivers/isdn,drivers/staging}
        in_root depmod "$(basename "$(dirname "$modules")")"
    done
    in_root update-initramfs -u -k all > /dev/null
}

boot_files() {
    [ "$kernel" -eq 1 ] || return 0
    log "systemd-boot entry"
    local esp=$out/esp
    rm -rf "$esp" && mkdir -p "$esp/EFI/BOOT" "$esp/loader/entries"
    local vmlinuz initrd
    vmlinuz=$(ls "$rootfs"/boot/vmlinuz-* | tail -1)
    initrd=$(ls "$rootfs"/boot/initrd.img-* | tail -1)
    cp "$vmlinuz" "$esp/vmlinuz" && cp "$initrd" "$esp/initrd.img"
    cp "$rootfs/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$esp/EFI/BOOT/BOOTX64.EFI"
    printf 'default mekong.conf\ntimeout 0\n' > "$esp/loader/loader.conf"
    printf 'title Mekong edge\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=LABEL=MEKONG-ROOT ro quiet console=tty0 console=ttyS0,115200\n' \
        > "$esp/loader/entries/mekong.conf"
}

disk_image() {
    [ "$image" -eq 1 ] || return 0
    [ "$kernel" -eq 1 ] || { echo "--image needs the kernel (drop --no-kernel)" >&2; exit 2; }
    log "disk image"
    local esp_mb=128 data_mb=512 root_mb
    root_mb=$(( $(du -sm "$rootfs" | cut -f1) * 13 / 10 + 64 ))
    local img=$out/mekong-edge-$arch.img
    rm -f "$img" "$out"/part-*.img
    mkfs.vfat -C -n MEKONG-ESP "$out/part-esp.img" $((esp_mb * 1024)) > /dev/null
    mcopy -s -i "$out/part-esp.img" "$out/esp"/* ::/
    mkfs.ext4 -q -L MEKONG-ROOT -d "$rootfs" "$out/part-root.img" "${root_mb}M"
    mkfs.ext4 -q -L MEKONG-DATA "$out/part-data.img" "${data_mb}M"
    truncate -s $(( (1 + esp_mb + root_mb + data_mb + 1) ))M "$img"
    sfdisk -q "$img" <<EOF
label: gpt
start=1MiB, size=${esp_mb}MiB, type=uefi, name=esp
size=${root_mb}MiB, type=linux, name=root
size=${data_mb}MiB, type=linux, name=data
EOF
    local offset=1
    for part in esp root data; do
        dd if="$out/part-$part.img" of="$img" bs=1M seek=$offset conv=notrunc,sparse status=none
        offset=$(( offset + $(stat -c %s "$out/part-$part.img") / 1048576 ))
    done
    rm -f "$out"/part-*.img
}

started=$(date +%s)
debootstrap_rootfs
install_mekong
configure
slim
boot_files
disk_image
log "done in $(( $(date +%s) - started )) s: rootfs $(du -sh "$rootfs" | cut -f1) at $rootfs"
[ "$image" -eq 0 ] || log "image $(du -h --apparent-size "$out/mekong-edge-$arch.img" | cut -f1) at $out/mekong-edge-$arch.img"
