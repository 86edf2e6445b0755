/** Annotations the portal keeps on each SpotPolicy it writes; their one home is ferry-common, which the operator reads too. */
export { SPOT_POLICY_ANNOTATIONS } from '@ferry/plugin-ferry-common';
