export const pluginId = 'ferry';
