# The kernel's gfx_target_version and ROCm's HSA_OVERRIDE_GFX_VERSION as ISA
# names, as lib/releases/gfx_version.ts converts them: gfx_target_version is
# major·10000 + minor·100 + stepping, and the ISA name writes the major in
# decimal and the minor and stepping as one hex digit each (110501 → gfx1151,
# 90010 → gfx90a); HSA_OVERRIDE_GFX_VERSION is "major.minor.stepping" in decimal.
#
# Builtins only, no nixpkgs: the tests evaluate it with a bare `nix eval`, and
# the NixOS module imports it for its assertion.
let
  inherit (builtins)
    elemAt
    fromJSON
    isInt
    isString
    match
    toJSON
    ;

  fail = message: throw "rocm-nightly: ${message}";

  # Builtins have no hex formatting: a lookup list for one digit.
  hexDigits = [
    "0"
    "1"
    "2"
    "3"
    "4"
    "5"
    "6"
    "7"
    "8"
    "9"
    "a"
    "b"
    "c"
    "d"
    "e"
    "f"
  ];

  hexValue = builtins.listToAttrs (
    builtins.genList (i: {
      name = elemAt hexDigits i;
      value = i;
    }) 16
  );

  mod = a: b: a - (a / b) * b;

  # The ISA name of major, minor and stepping, or null when a part has none.
  isaOf =
    major: minor: stepping:
    if major < 1 || major > 99 || minor > 15 || stepping > 15 then
      null
    else
      "gfx${toString major}${elemAt hexDigits minor}${elemAt hexDigits stepping}";

  # "110501" (as sysfs writes it) or 110501 → "gfx1151". Throws, quoting the
  # value, for anything that is not the gfx_target_version of a GPU.
  targetOfGfxVersion =
    value:
    let
      text = if isInt value then toString value else value;
      number = fromJSON text;
      isa = isaOf (number / 10000) (mod (number / 100) 100) (mod number 100);
    in
    if !(isString text) || match "[1-9][0-9]{4,5}" text == null then
      fail "targetOfGfxVersion: ${toJSON value} is not a gfx_target_version: expected the decimal number of /sys/class/kfd/kfd/topology/nodes/<N>/properties, e.g. \"110501\" (0 is a CPU node)"
    else if isa == null then
      fail "targetOfGfxVersion: ${toJSON value} is not a gfx_target_version: its minor (${
        toString (mod (number / 100) 100)
      }) or stepping (${toString (mod number 100)}) is above 15"
    else
      isa;

  # "11.0.0" → "gfx1100"; null when the value is not major.minor.stepping in
  # decimal with an ISA name.
  targetOfHsaOverride =
    value:
    let
      parts = if isString value then match "([0-9]{1,2})[.]([0-9]{1,2})[.]([0-9]{1,2})" value else null;
      part = i: fromJSON (elemAt parts i);
    in
    if parts == null then null else isaOf (part 0) (part 1) (part 2);

  # For an ISA in no family of the target table (lib/releases/targets.json): the
  # supported ISA of its generation whose code it can run, and the
  # HSA_OVERRIDE_GFX_VERSION that makes ROCm run it; null for a supported ISA
  # or a generation the table has no entry for.
  hsaOverrideFor =
    targets: isa:
    let
      supported = builtins.any (family: builtins.elem isa family.isas) (
        builtins.attrValues targets.families
      );
      generation = match "(gfx[1-9][0-9]?[0-9a-f])[0-9a-f]" isa;
      nearest =
        if generation == null then null else targets.hsaOverrides."${elemAt generation 0}X" or null;
      parts = match "gfx([1-9][0-9]?)([0-9a-f])([0-9a-f])" nearest;
    in
    if supported || nearest == null then
      null
    else
      {
        isa = nearest;
        hsaOverrideGfxVersion = "${elemAt parts 0}.${toString hexValue.${elemAt parts 1}}.${
          toString hexValue.${elemAt parts 2}
        }";
      };
in
{
  inherit targetOfGfxVersion targetOfHsaOverride hsaOverrideFor;
}
